"""Simulated candidate pools for model selection: rectified curves with plateaus of varying
length, and :func:`compare_rules`, which scores the confident-flip rule of
:mod:`ftscale.laws.selection.profile` against the naive rules on them (pinned by
tests/laws/test_selection.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ftscale.laws.registry import get_law
from ftscale.laws.selection.profile import predict_at_target, select_model


@dataclass
class Candidate:
    """A simulated candidate model: its size (parameters) and true rectified-law parameters."""

    name: str
    size: float
    params: dict[str, float]

    def loss(self, D: np.ndarray) -> np.ndarray:
        """True loss (nats/token) at data sizes D (examples)."""
        return get_law("rectified").predict_with(self.params, None, D)


def simulate_candidates(rng: np.random.Generator, n_models: int = 6) -> list[Candidate]:
    """A pool of candidate models whose curves have a pre-power plateau of varying length.

    Size helps (lower E) but pretraining quality varies independently of size (E has a random
    factor), and each model's plateau ends at its own data size D_t (200 to 20,000 examples,
    log-uniform; the plateau sits 0.5 to 2.5 nats/token above E). A model whose plateau is still ending at the budget looks worse there than
    it will be at the target: the case where "best loss at the budget" misleads.
    """
    out = []
    for i in range(n_models):
        size = float(np.exp(rng.uniform(np.log(1e8), np.log(1e10))))
        quality = rng.normal(0.0, 0.1)
        E = 0.4 + 1.0 * (size / 1e8) ** -0.05 * np.exp(quality)
        beta = rng.uniform(0.3, 0.8)
        # The plateau ends around D_t examples (D_t^beta = D_l); its height above E is the gap.
        d_t = float(np.exp(rng.uniform(np.log(200.0), np.log(2e4))))
        gap = rng.uniform(0.5, 2.5)
        D_l = d_t**beta
        out.append(Candidate(f"m{i}", size, {"B": gap * D_l, "D_l": D_l, "beta": beta, "E": E}))
    return out


def compare_rules(
    n_trials: int = 40,
    seed: int = 0,
    budget: float = 3200,
    target: float = 3.2e4,
    noise: float = 0.001,
    n_models: int = 6,
    laws: tuple[str, ...] = ("rectified",),
    confidence: float = 0.9,
) -> dict[str, Any]:
    """Score selection rules on ``n_trials`` simulated pools (seeded, deterministic).

    Each pool: ``n_models`` candidates observed at 100, 141, 200, ... examples (a factor sqrt(2)
    apart) up to ``budget`` with relative Gaussian noise ``noise`` (0.001: a mean over a few
    seeds); the truth is each model's loss at ``target``. Rules: ``largest_model``,
    ``best_at_budget`` (lowest observed loss at the budget), ``fit_<law>`` for each of ``laws``
    (the plain Huber fit of :func:`predict_at_target`, lowest prediction wins) and
    ``select_model`` (:func:`select_model`'s confident-flip rule; it is not told the noise).
    Returns per rule the share of pools where it picked the true best (``accuracy``) and the
    mean excess true loss of its pick (``regret``, nats/token); for ``select_model`` also how
    often it left the budget-best (``flips``) and how often such a flip was right.
    """
    rng = np.random.default_rng(seed)
    # Cheap runs are cheap: sizes every factor sqrt(2) from 100 examples up to the budget.
    sizes = 100 * 2.0 ** (np.arange(0, int(2 * np.log2(budget / 100) + 1e-9) + 1) / 2)
    rules = ["largest_model", "best_at_budget"] + [f"fit_{law}" for law in laws] + ["select_model"]
    flips = 0
    hits = dict.fromkeys(rules, 0)
    regret = dict.fromkeys(rules, 0.0)
    n_flip = n_flip_right = 0
    for _ in range(n_trials):
        pool = simulate_candidates(rng, n_models)
        truth = np.array([c.loss(np.array([target]))[0] for c in pool])
        obs = {c.name: c.loss(sizes) * (1 + noise * rng.normal(size=sizes.size)) for c in pool}
        names = [c.name for c in pool]
        picks = {
            "largest_model": int(np.argmax([c.size for c in pool])),
            "best_at_budget": int(np.argmin([obs[c.name][-1] for c in pool])),
        }
        for law in laws:
            preds = [predict_at_target(sizes, obs[c.name], target, law)[0] for c in pool]
            picks[f"fit_{law}"] = int(np.argmin(preds))
        sel = select_model(
            {c.name: (sizes, obs[c.name]) for c in pool}, budget, target, confidence=confidence
        )
        picks["select_model"] = names.index(sel["best"])
        best = int(np.argmin(truth))
        flips += int(int(np.argmin([c.loss(np.array([budget]))[0] for c in pool])) != best)
        if sel["flipped"]:
            n_flip += 1
            n_flip_right += int(picks["select_model"] == best)
        for r, k in picks.items():
            hits[r] += int(k == best)
            regret[r] += float(truth[k] - truth[best])
    return {
        "n_trials": n_trials,
        "seed": seed,
        "budget": budget,
        "target": target,
        "noise": noise,
        "confidence": confidence,
        "pools_where_budget_best_is_not_target_best": flips / n_trials,
        "rules": {
            r: {"accuracy": hits[r] / n_trials, "regret": regret[r] / n_trials} for r in rules
        },
        "select_model_flips": n_flip,
        "select_model_flips_right": n_flip_right,
    }


# -- benchmark-like pools ------------------------------------------------------------------------

#: The data sizes of a benchmark-like pool: 200 x 2^k examples, 200 .. 1,638,400.
BENCH_SIZES = 200.0 * 2.0 ** np.arange(14)


def simulate_pool(
    rng: np.random.Generator,
    n_models: int = 30,
    n_families: int = 6,
    sizes: np.ndarray = BENCH_SIZES,
    noise: tuple[float, float] = (0.003, 0.02),
    hard: bool = False,
    steep: bool = False,
) -> list[dict[str, Any]]:
    """A pool of candidates observed at every size of ``sizes`` (examples), with a zero-shot
    loss, a parameter count and a family: ``[{"name", "size", "family", "zero_shot", "sizes",
    "losses", "true"}]`` (``true``: the noiseless curve at ``sizes``; nats/token).

    Each family has its own learning exponent and floor; within a family, larger models have a
    lower floor, an earlier or later end of the flat pre-power phase (D_t, log-uniform 50 to
    100,000 examples) and an exponent near the family's, so curves cross. Relative noise per
    pool is log-uniform in ``noise`` (one test-set evaluation per point); in one pool in three
    the smallest sizes sit above the zero-shot loss (early finetuning hurts first).
    """
    fam_floor = rng.uniform(0.3, 2.0, n_families)
    fam_height = rng.uniform(0.8, 3.0, n_families)
    fam_beta = rng.uniform(0.1, 1.0, n_families) if hard else rng.uniform(0.15, 0.7, n_families)
    spread, dt_max = (0.3, 3e5) if hard else (0.15, 1e5)
    if hard:
        noise = (noise[0], 0.03)
    if steep:
        # Long power phases with very different rates: the budget's ranking turns over.
        fam_beta = rng.uniform(0.05, 0.5, n_families)
        fam_floor = rng.uniform(0.05, 0.6, n_families)
        fam_height = rng.uniform(1.5, 4.0, n_families)
        spread, dt_max = 0.3, 3e3
        noise = (0.002, 0.01)
    sigma = float(np.exp(rng.uniform(np.log(noise[0]), np.log(noise[1]))))
    bump = rng.random() < 1 / 3
    out = []
    for i in range(n_models):
        f = int(rng.integers(n_families))
        size = float(np.exp(rng.uniform(np.log(6e7), np.log(7e9))))
        rel = np.log(size / 1e9)
        beta = fam_beta[f] * float(np.exp(rng.normal(0, spread)))
        E = fam_floor[f] * float(np.exp(-0.06 * rel + rng.normal(0, 0.08)))
        gap = fam_height[f] * float(np.exp(-0.05 * rel + rng.normal(0, 0.15)))
        d_t = float(np.exp(rng.uniform(np.log(50.0), np.log(dt_max))))
        D_l = d_t**beta
        true = gap * D_l / (D_l + sizes**beta) + E
        zero = gap + E
        if bump:
            # Early finetuning first costs a little before the curve starts to fall.
            true = true * (1 + 0.04 * rng.random() * np.exp(-sizes / (2 * sizes[0])))
        losses = true * np.exp(sigma * rng.normal(size=sizes.size))
        out.append(
            {
                "name": f"f{f}-m{i}",
                "size": size,
                "family": f"fam{f}",
                "zero_shot": zero * float(np.exp(sigma * rng.normal())),
                "sizes": sizes.copy(),
                "losses": losses,
                "true": true,
            }
        )
    return out
