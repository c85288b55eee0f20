"""The paper's joint procedure: shared beta and E per (task, method), then (A, alpha) per factor.

Stage 1 fits one law per factor (model size, pretraining tokens) to that factor's runs, with
beta and E shared across the factors, minimising the summed Huber objective over all their runs
together. Stage 2 holds beta and E at the stage-1 values and refits (A, alpha) for each factor on
its own, including factors that stage 1 did not see (PET size: the paper does not use PET-size
runs to estimate beta and E).
"""

from __future__ import annotations

import numpy as np

from ftscale.errors import UserError
from ftscale.laws._blas import single_thread_blas
from ftscale.laws.base import ScalingLaw
from ftscale.laws.optim import huber_objective, multistart, polish
from ftscale.laws.registry import get_law

Block = tuple[np.ndarray, np.ndarray, np.ndarray]  # (X, D, L)


class JointLaw:
    """Estimator for the joint procedure over several factors of one (task, method).

    Hyper-parameters: ``law`` (a two-factor form), ``shared`` (parameter names shared by the
    factors in stage 1) and the :class:`ScalingLaw` hyper-parameters. Fitted: ``shared_``
    (name -> value), ``stage1_`` (factor -> public parameters of stage 1), ``laws_`` (factor ->
    fitted :class:`ScalingLaw` of stage 2, with ``fixed_`` naming the shared parameters),
    ``converged_``.
    """

    def __init__(
        self, law: str = "multiplicative", shared: tuple[str, ...] = ("beta", "E"), **hyper
    ):
        self.law = law
        self.shared = tuple(shared)
        self.hyper = hyper

    def fit(self, blocks: dict[str, Block], extra: dict[str, Block] | None = None) -> JointLaw:
        """``blocks``: factor name -> (X, D, L) used in both stages; ``extra``: factors refitted
        in stage 2 only. X in the factor's unit, D in examples, L in nats/token. Returns self."""
        with single_thread_blas():
            return self._fit(blocks, extra)

    def _fit(self, blocks: dict[str, Block], extra: dict[str, Block] | None) -> JointLaw:
        cls = get_law(self.law)
        if cls.n_factors != 2:
            raise UserError(f"the joint procedure needs a two-factor law, not {self.law}")
        unknown = set(self.shared) - set(cls.param_names)
        if unknown:
            raise UserError(f"cannot share unknown parameters {sorted(unknown)} of {self.law}")
        if not blocks:
            raise UserError("the joint procedure needs at least one factor's runs")
        proto = cls(**self.hyper)
        names = list(blocks)
        private = [k for k in cls.param_names if k not in self.shared]
        # Global free vector: shared parameters, then each factor's private ones.
        layout = list(self.shared) + [f"{f}:{k}" for f in names for k in private]
        index = {
            f: [layout.index(k if k in self.shared else f"{f}:{k}") for k in cls.param_names]
            for f in names
        }
        funs = {}
        n_points = 0
        for f in names:
            X, D, L = blocks[f]
            x, d = proto._logs(X, D)
            y = proto._losses(L, d.size)
            n_points += d.size
            funs[f] = huber_objective(
                cls.log_pred, x, d, y, space=proto.space, delta=proto.huber_delta
            )
        if n_points < len(layout):
            raise UserError(
                f"{n_points} points for {len(layout)} free parameters of the joint {self.law} law"
            )

        def fun(theta: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            total = np.zeros(theta.shape[0])
            grad = np.zeros_like(theta)
            for f in names:
                fv, gv = funs[f](theta[:, index[f]], rows)
                total += fv
                grad[:, index[f]] += gv
            return total, grad

        # Start grid: the single law's grid, the same private start for every factor.
        single = proto.start_grid()
        starts = np.zeros((single.shape[0], len(layout)))
        for f in names:
            starts[:, index[f]] = single
        lo, hi = np.zeros(len(layout)), np.zeros(len(layout))
        for f in names:
            lo[index[f]], hi[index[f]] = cls.free_bounds()
        box = (lo, hi)
        starts = np.clip(starts, lo, hi)
        theta, fvals, _ = multistart(
            fun, starts, max_iter=proto.max_iter, screen=proto.screen, bounds=box
        )
        results = [
            polish(fun, t, max_iter=4 * proto.max_iter, bounds=box)
            for t, fv in zip(theta[: proto.n_polish], fvals, strict=False)
            if np.isfinite(fv)
        ]
        if not results:
            raise UserError("no start of the joint fit gave a finite objective")
        best, obj, conv, msg = min(results, key=lambda r: r[1])
        self.stage1_ = {f: cls.from_free(best[index[f]]) for f in names}
        first = self.stage1_[names[0]]
        self.shared_ = {k: first[k] for k in self.shared}
        self.stage1_objective_ = obj
        self.converged_ = conv
        self.message_ = msg
        self.laws_: dict[str, ScalingLaw] = {}
        for f, (X, D, L) in {**blocks, **(extra or {})}.items():
            law = cls(**self.hyper).fit(X, D, L, fixed=self.shared_)
            self.laws_[f] = law
            self.converged_ = self.converged_ and law.converged_
        return self
