"""Model selection from cheap runs: which candidate model to finetune, judged from small-data runs.

Each candidate's losses at data sizes up to a budget are fitted with a one-factor law (the
rectified form by default) and extrapolated to the target data size; candidates are ranked by
that prediction. Small-data points often sit in the flat "pre-power" phase, where a model's
pretraining already covers what a few examples teach: the rectified form L = B/(D_l + D^beta) + E
bends from that plateau into the power law, so the plateau does not masquerade as a slow curve.

:func:`simulate_candidates` generates seeded candidate pools with such plateaus and
:func:`compare_rules` scores this rule against "largest model wins" and "best loss at the budget
wins" on them (the numbers are in docs/laws.md and pinned by tests/laws/test_selection.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ftscale.errors import UserError
from ftscale.laws.registry import get_law


def predict_at_target(
    D: np.ndarray, L: np.ndarray, target: float, law: str = "rectified", **hyper
) -> tuple[float, bool]:
    """Fit a one-factor ``law`` to losses ``L`` (nats/token) at data sizes ``D`` (examples) and
    return (predicted loss at ``target`` examples, converged)."""
    cls = get_law(law)
    if cls.n_factors != 1:
        raise UserError(f"model selection needs a one-factor law (power, rectified), not {law}")
    import warnings

    # One polish: selection fits are many and small; the batched phase already ran every start.
    hyper = {"n_polish": 1, "max_iter": 100, **hyper}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = cls(**hyper).fit(None, D, L)
    return float(fitted.predict(None, target)), bool(fitted.converged_)


def select_model(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    budget: float,
    target: float,
    law: str = "rectified",
    **hyper,
) -> list[dict[str, Any]]:
    """Rank candidates (name -> (data sizes, losses)) by predicted loss at ``target`` examples,
    using only points with data size <= ``budget``. Best first:
    ``[{"model", "predicted_loss", "n_points", "converged"}]``."""
    if not curves:
        raise UserError("no candidate models to select from")
    if target <= 0 or budget <= 0:
        raise UserError("--budget and --target must be positive")
    n_params = len(get_law(law).param_names)
    out = []
    for name, (D, L) in curves.items():
        D = np.asarray(D, dtype=float)
        L = np.asarray(L, dtype=float)
        keep = budget >= D
        if keep.sum() < n_params:
            raise UserError(
                f"model {name!r}: {int(keep.sum())} data sizes <= budget {budget:g}, the {law} "
                f"law needs at least {n_params}"
            )
        pred, conv = predict_at_target(D[keep], L[keep], target, law, **hyper)
        out.append(
            {"model": name, "predicted_loss": pred, "n_points": int(keep.sum()), "converged": conv}
        )
    out.sort(key=lambda r: r["predicted_loss"])
    return out


# -- simulation ----------------------------------------------------------------------------------


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
    laws: tuple[str, ...] = ("rectified", "power"),
) -> dict[str, Any]:
    """Score selection rules on ``n_trials`` simulated pools (seeded).

    Each pool: ``n_models`` candidates observed at 100, 141, 200, ... examples (a factor sqrt(2)
    apart) up to ``budget`` with relative Gaussian noise ``noise`` (0.1% by default: a mean over
    seeds; docs/laws.md shows how the comparison degrades with more noise); the truth is each
    model's loss at ``target``. Returns per
    rule the share of pools where it picked the true best (``accuracy``) and the mean excess true
    loss of its pick (``regret``, nats/token).
    """
    rng = np.random.default_rng(seed)
    # Cheap runs are cheap: sizes every factor sqrt(2) from 100 examples up to the budget.
    sizes = 100 * 2.0 ** (np.arange(0, int(2 * np.log2(budget / 100) + 1e-9) + 1) / 2)
    rules = ["largest_model", "best_at_budget"] + [f"fit_{law}" for law in laws]
    flips = 0
    hits = dict.fromkeys(rules, 0)
    regret = dict.fromkeys(rules, 0.0)
    for _ in range(n_trials):
        pool = simulate_candidates(rng, n_models)
        truth = np.array([c.loss(np.array([target]))[0] for c in pool])
        obs = {c.name: c.loss(sizes) * (1 + noise * rng.normal(size=sizes.size)) for c in pool}
        picks = {
            "largest_model": int(np.argmax([c.size for c in pool])),
            "best_at_budget": int(np.argmin([obs[c.name][-1] for c in pool])),
        }
        for law in laws:
            ranked = select_model({c.name: (sizes, obs[c.name]) for c in pool}, budget, target, law)
            picks[f"fit_{law}"] = [c.name for c in pool].index(ranked[0]["model"])
        best = int(np.argmin(truth))
        flips += int(int(np.argmin([c.loss(np.array([budget]))[0] for c in pool])) != best)
        for r, k in picks.items():
            hits[r] += int(k == best)
            regret[r] += float(truth[k] - truth[best])
    return {
        "n_trials": n_trials,
        "seed": seed,
        "budget": budget,
        "target": target,
        "noise": noise,
        "pools_where_budget_best_is_not_target_best": flips / n_trials,
        "rules": {
            r: {"accuracy": hits[r] / n_trials, "regret": regret[r] / n_trials} for r in rules
        },
    }
