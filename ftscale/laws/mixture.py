"""Model averaging: the bootstrap draws of several fitted laws of one group, pooled by weight.

Not a law form (it is fitted by nobody and not in the registry): a :class:`LawMixture` wraps the
fitted laws of one (task, method), each with its bootstrap draws and a weight, and behaves as
one law wherever only draws count. Its point prediction is the first member's (the chosen law:
the answer's and Delta_h's prediction), while its ``bootstrap_params_`` pool the members'
draws, ``round(weight * n)`` of each (the weights sum to 1), so that intervals, P(best) and
critical data sizes taken from the draws carry the uncertainty of which law is right.

A pooled draw is a row ``(member index, free parameters of that member, zero padding)``; the
scale parameters are already logs (``log_params`` is empty), so every consumer that turns
draws into free vectors and calls :meth:`log_pred` works unchanged.
"""

from __future__ import annotations

import numpy as np

from ftscale.laws.base import ScalingLaw
from ftscale.laws.recommend import _draw_theta

#: The widest member's free parameters (additive_rectified: 6).
_WIDTH = 6


class LawMixture(ScalingLaw):
    """Pooled draws of ``members`` = [(fitted law with bootstrap draws, weight)], the first the
    law whose point predictions are used. Weights are normalised to sum to 1; a member
    without draws is left out."""

    name = "mixture"
    formula = "draws pooled over laws"
    param_names = ("member",) + tuple(f"t{k}" for k in range(_WIDTH))
    log_params = frozenset()
    n_factors = 2

    def __init__(self, members: list[tuple[ScalingLaw, float]], *, seed: int = 0):
        super().__init__(seed=seed)
        self.members = members
        self.main = members[0][0]
        self.n_factors = self.main.n_factors  # a study of one model pools one-factor laws
        self.params_ = self.main.params_
        rows = []
        w = np.array([max(float(v), 0.0) for _, v in members])
        n = min(
            len(law.bootstrap_params_) for law, v in members if law.bootstrap_params_ is not None
        )
        rng = np.random.default_rng(seed)
        for i, (law, _) in enumerate(members):
            draws = law.bootstrap_params_
            k = int(round(w[i] / w.sum() * n)) if w.sum() > 0 else int(i == 0) * n
            if draws is None or k == 0:
                continue
            pick = np.asarray(draws, dtype=float)[rng.choice(len(draws), k, replace=False)]
            free = _draw_theta(law, pick)
            rows.append(
                np.hstack([np.full((k, 1), i), free, np.zeros((k, _WIDTH - free.shape[1]))])
            )
        self.bootstrap_params_ = np.vstack(rows) if rows else None
        self.n_bootstrap_ = 0 if self.bootstrap_params_ is None else len(self.bootstrap_params_)
        self.weights_ = (w / w.sum()).tolist() if w.sum() > 0 else None

    def log_pred(self, theta, x, d):  # an instance's members decide; no gradient (not fitted)
        lp = np.full((theta.shape[0], np.size(d)), np.nan)
        idx = np.nan_to_num(theta[:, 0], nan=-1).astype(int)
        for i, (law, _) in enumerate(self.members):
            rows = np.flatnonzero(idx == i)
            if rows.size:
                p = len(law.param_names)
                lp[rows] = law.log_pred(theta[rows, 1 : 1 + p], law.map_log_x(x), d)[0]
        return lp, np.zeros((*lp.shape, theta.shape[1]))

    def predict(self, X, D):
        """The first member's (the chosen law's) prediction (nats/token)."""
        return self.main.predict(X, D)

    def predict_interval(self, X, D, level: float = 0.95):
        """Percentile interval of the pooled draws' predictions (nats/token)."""
        D = np.broadcast_arrays(np.asarray(X, dtype=float), np.asarray(D, dtype=float))[1]
        preds = self.draw_predictions(np.broadcast_to(X, D.shape), D.ravel())
        if preds is None:
            return None
        q = 50 * (1 - level)
        lo, hi = np.nanpercentile(preds, [q, 100 - q], axis=0)
        return lo.reshape(D.shape), hi.reshape(D.shape)
