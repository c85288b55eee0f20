"""The training loop of a run, and the learning-rate search around it.

A run trains one or several candidate learning rates (``lr`` a list, or ``"auto"``). Each
candidate is a :class:`Trial`: its own optimiser (AdamW moments), schedule, best-dev checkpoint
and batch stream. Every trial draws the same batches (its stream is seeded by the run's seed),
so candidates differ in the rate alone. Trials share the model: switching from one to another
copies the trainable parameters in and out (``Trial.state``), so a search costs memory for
those copies, not another model.

How candidates are compared (``lr_search``):

- ``"grid"``: every candidate trains to its own end (budget, early stop or end of its decay).
- ``"halving"`` (successive halving, Jamieson & Talwalkar 2016; Li et al. 2018 "Hyperband"):
  with n candidates and ratio eta = 3, ceil(log_3 n) rungs; at each rung every surviving trial
  trains to the rung's step (budget / 3^k, rounded up to a dev evaluation) and only the best
  1/3 by dev loss so far go on (at least one). With the three rates of ``"auto"``: all three
  train to a third of the budget, one trains on.

Either way the run keeps the candidate with the lowest dev loss, at its best-dev checkpoint;
test data are never looked at before that choice. With ``Loop.step0`` the parameters before any
step are a checkpoint too (step 0, evaluated on dev once for all trials): every trial starts
with it as its best, so a run whose training only raised the dev loss keeps step 0.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from ftscale.finetune.optim import Schedule

#: Successive halving keeps the best 1/ETA of the trials at each rung.
ETA = 3


@dataclass
class Trial:
    """One candidate rate's training state. Steps are 1-based optimiser steps; losses nats/token.

    ``stop``: None while it may train on, else why it ended: "patience" (early stop),
    "decayed" (its WSD decay ended), "budget", "diverged" (a NaN/inf loss) or "halved" (a
    better candidate went on at a rung).
    """

    lr: float
    schedule: Schedule
    opt: Any
    batches: Any
    losses: Any  # device tensor, one training loss per step of the budget
    step: int = 0
    best_dev: float = math.inf
    best_step: int = 0
    best_state: list | None = None
    bad_evals: int = 0
    diverged_step: int | None = None
    stop: str | None = None
    train_tokens: int = 0
    state: list | None = None  # the trainable parameters while another trial is live

    def summary(self) -> dict[str, Any]:
        """What the run record keeps of this trial."""
        return {
            "lr": self.lr,
            "best_dev": None if not math.isfinite(self.best_dev) else self.best_dev,
            "best_step": self.best_step if math.isfinite(self.best_dev) else None,
            "steps": self.step,
            "stop": self.stop,
            "decay_step": self.schedule.plateau_step,
        }


@dataclass
class Loop:
    """What every trial of a run shares: the model's runner and trainable parameters, the dev
    batches, the step function and the settings of the loop.

    ``step_fn(batch) -> loss tensor`` trains one step with the live trial's optimiser (set in
    :meth:`advance`); ``evaluate(batches) -> float`` is the dev loss; ``phases`` accumulates
    seconds of training and dev evaluation.
    """

    params: list
    dev_batches: list
    train_step: Any  # (batch, opt) -> detached loss tensor
    evaluate: Any  # (batches) -> float
    sync: Any  # () -> None: wait for the device
    patience: int
    eval_every: int
    check_every: int
    phases: dict[str, float]
    step0: bool = False  # the parameters before any step compete as checkpoint 0
    step0_dev: float | None = None  # their dev loss where known already (the base model's)
    live: Trial | None = None
    on_dev: Any = None  # (trial, step, dev_loss) -> None after each dev evaluation (trackers)

    def _switch(self, trial: Trial, n_trials: int) -> None:
        import torch

        if self.live is trial or n_trials == 1:
            self.live = trial
            return
        with torch.no_grad():
            if self.live is not None:
                self.live.state = [p.detach().clone() for p in self.params]
            if trial.state is not None:
                for p, s in zip(self.params, trial.state, strict=True):
                    p.copy_(s)
                trial.state = None
        self.live = trial

    def advance(self, trial: Trial, until: int, n_trials: int, initial: list | None) -> None:
        """Train ``trial`` on to step ``until`` (or to where it stops). ``initial``: the
        parameters every trial starts from (loaded into a trial's first step when several
        trials share the model)."""
        import torch

        if trial.stop is not None:
            return
        if trial.step == 0 and n_trials > 1 and trial.state is None:
            trial.state = [s.clone() for s in initial]
        self._switch(trial, n_trials)
        until = min(until, trial.schedule.end)
        self.sync()
        seg_start = time.perf_counter()
        step = trial.step
        while step < until:
            step += 1
            for g in trial.opt.param_groups:
                g["lr"] = trial.schedule.at(step)
            b = next(trial.batches)
            trial.losses[step - 1] = self.train_step(b, trial.opt)
            trial.train_tokens += b.n_tokens
            end = trial.schedule.end
            at_eval = step % self.eval_every == 0 or step == end
            if step % self.check_every == 0 or at_eval:
                finite = torch.isfinite(trial.losses[:step])
                if not bool(finite.all()):
                    trial.diverged_step = int((~finite).nonzero()[0, 0]) + 1
                    trial.stop = "diverged"
                    break
            if at_eval:
                self.sync()
                self.phases["train"] += time.perf_counter() - seg_start
                t = time.perf_counter()
                dev_loss = self.evaluate(self.dev_batches)
                self.phases["dev_eval"] += time.perf_counter() - t
                if self.on_dev is not None:
                    self.on_dev(trial, step, dev_loss)
                seg_start = time.perf_counter()
                if not math.isfinite(dev_loss):
                    trial.diverged_step, trial.stop = step, "diverged"
                    break
                if dev_loss < trial.best_dev:
                    trial.best_dev, trial.best_step, trial.bad_evals = dev_loss, step, 0
                    trial.best_state = [p.detach().clone() for p in self.params]
                else:
                    trial.bad_evals += 1
                    if self.patience and trial.bad_evals >= self.patience:
                        trial.bad_evals = 0
                        if trial.schedule.on_plateau(step):
                            trial.stop = "patience"
                            break
                if step >= trial.schedule.end:
                    trial.stop = "decayed" if trial.schedule.kind == "wsd" else "budget"
                    break
        trial.step = step
        self.sync()
        self.phases["train"] += time.perf_counter() - seg_start


def rung_steps(total: int, n: int, eval_every: int, eta: int = ETA) -> list[int]:
    """Steps at which successive halving compares ``n`` trials over a ``total``-step budget:
    total / eta^k for k = R-1 .. 1 (R = ceil(log_eta n) rungs), each rounded up to a dev
    evaluation (a multiple of ``eval_every``), increasing, below ``total``."""
    if n <= 1:
        return []
    rungs = math.ceil(math.log(n) / math.log(eta) - 1e-9)
    out = []
    for k in range(rungs, 0, -1):
        s = total / eta**k
        s = math.ceil(s / eval_every) * eval_every if eval_every else math.ceil(s)
        if s < total and (not out or s > out[-1]):
            out.append(int(s))
    return out


def search_steps(n: int, total: int, how: str, eval_every: int) -> int:
    """Most optimiser steps a search of ``n`` candidate rates over a ``total``-step budget can
    take (no early stop): n * total for "grid"; for "halving", the trials each rung keeps
    times the steps between rungs."""
    if n <= 1 or how == "grid":
        return max(1, n) * total
    steps, alive, last = 0, n, 0
    for rung in rung_steps(total, n, eval_every):
        steps += alive * (rung - last)
        alive, last = max(1, math.ceil(alive / ETA)), rung
    return steps + alive * (total - last)


def run_search(loop: Loop, trials: list[Trial], how: str, total: int) -> Trial | None:
    """Train ``trials`` by ``how`` ("grid" or "halving", see the module) and return the one
    with the lowest dev loss (None when every trial diverged). Leaves the model's parameters
    at the chosen trial's best-dev checkpoint."""
    import torch

    n = len(trials)
    initial = [p.detach().clone() for p in loop.params] if n > 1 or loop.step0 else None
    if loop.step0:
        dev0 = loop.step0_dev
        if dev0 is None:
            t0 = time.perf_counter()
            dev0 = loop.evaluate(loop.dev_batches)
            loop.phases["dev_eval"] += time.perf_counter() - t0
        if math.isfinite(dev0):
            for t in trials:  # the shared starting point is every trial's first checkpoint
                t.best_dev, t.best_step, t.best_state = dev0, 0, initial
    survivors = list(trials)
    if how == "halving":
        for rung in rung_steps(total, n, loop.eval_every):
            for t in survivors:
                loop.advance(t, rung, n, initial)
            alive = sorted((t for t in survivors if t.stop != "diverged"), key=lambda t: t.best_dev)
            keep = max(1, math.ceil(len(survivors) / ETA))
            for t in alive[keep:]:
                if t.stop is None:
                    t.stop = "halved"
            survivors = alive[:keep]
    for t in survivors:
        loop.advance(t, total, n, initial)
    for t in trials:  # a trial left at the budget's end without a stop of its own
        if t.stop is None:
            t.stop = "budget"
    ok = [t for t in trials if t.stop != "diverged" and t.best_state is not None]
    if not ok:
        return None
    chosen = min(ok, key=lambda t: t.best_dev)
    with torch.no_grad():
        for p, s in zip(loop.params, chosen.best_state, strict=True):
            p.copy_(s)
    for t in trials:  # free the copies
        t.state = None
        if t is not chosen:
            t.best_state = None
    return chosen
