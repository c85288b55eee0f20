"""The estimator every law form shares: fit from a grid of starts, predict, bootstrap, score.

A law form is a subclass that names its parameters and implements :meth:`ScalingLaw.log_pred`
(the log of the predicted loss and its gradient in free parameters). Everything else lives here.

Free parameters: the scale parameters (A, B, E, D_l) are fitted as their logs, so they stay
positive, and every prediction is a log-sum-exp of its terms, so a start with A = e^25 does not
overflow. Exponents (alpha, beta) are fitted as they are.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import warnings
from typing import Any, ClassVar

import numpy as np

from ftscale.errors import ConvergenceWarning, UserError
from ftscale.laws._blas import single_thread_blas
from ftscale.laws.optim import batched_lbfgs, huber_objective, multistart, polish

#: Relative objective difference under which two converged starts tie: distinct basins of the
#: demo's fits differ by 0.5% or more, the points of a flat valley by 1e-12.
TIE_RTOL = 1e-6


class ScalingLaw:
    """A finetuning scaling law L(X, D) (or L(D) for one-factor forms) as an estimator.

    Hyper-parameters (constructor): ``huber_delta`` (nats/token), ``space`` (``"linear"``: residual
    on L as in the paper's Eq. 2; ``"log"``: on log L), ``grid`` (free-parameter start values per
    name, overriding the form's default grid), ``n_bootstrap`` (refits on resampled points; 0 for
    none), ``seed``, ``n_polish`` (best batched starts refined with scipy), ``max_iter``,
    ``screen`` (successive halving over a large grid, see :func:`ftscale.laws.optim.multistart`).

    scikit-learn's conventions: :meth:`get_params` / :meth:`set_params` read and set these
    hyper-parameters, :meth:`clone` is a new unfitted estimator with the same ones, and fitted
    values are attributes ending in ``_``; :meth:`load_fitted` loads fitted parameters (e.g.
    from a fits file) without fitting.

    Fitted attributes: ``params_`` (name -> value), ``objective_``, ``converged_``, ``message_``,
    ``n_fit_``, ``delta_e_`` (mean |L_hat - L| on fitted points, nats/token), ``delta_h_`` (same on
    held-out points, or None), ``n_holdout_``, ``ci_`` (name -> (lo, hi), 95%) and
    ``bootstrap_params_`` (R, P) when ``n_bootstrap > 0``, ``n_bootstrap_`` (the draws asked
    for: ``n_bootstrap``, or those of :meth:`bootstrap_noise`).
    """

    name: ClassVar[str]
    #: Public parameter names, in the order of the free vector.
    param_names: ClassVar[tuple[str, ...]]
    #: Parameters fitted as their log (positive scales).
    log_params: ClassVar[frozenset[str]] = frozenset({"A", "B", "E", "D_l"})
    #: 2 for joint laws L(X, D), 1 for L(D).
    n_factors: ClassVar[int]
    #: Start values per parameter in FREE space (log for scales); the grid is their product.
    default_grid: ClassVar[dict[str, tuple[float, ...]]]
    formula: ClassVar[str]
    #: Short name for table columns (the report's "mult Δe"); the name where not set.
    short: ClassVar[str] = ""
    #: Box in FREE space per parameter. Scales: log in [-30, 50] (E may reach ~1e-13, i.e. 0);
    #: exponents: a form may narrow them. Without a box, flat valleys (all points on the
    #: plateau of a rectified curve) send parameters to infinity and L-BFGS crawls after them.
    bounds: ClassVar[dict[str, tuple[float, float]]] = {}
    #: Whether the form has a finite prediction at D = 0 (the zero-shot loss): forms with a
    #: pre-learned data size D_l do; a pure power of D does not.
    accepts_zero_data: ClassVar[bool] = False
    #: Whether ``--law auto`` / ``fit.laws = ["auto"]`` fit this form (a user can always name it).
    in_auto: ClassVar[bool] = True
    #: Whether two fits of this form cross at a data size given in closed form by their
    #: parameters (:func:`ftscale.laws.critical.closed_form`); else crossings are searched.
    closed_form_crossing: ClassVar[bool] = False
    #: The column of a per-factor-value measurement the law takes as its factor instead of X
    #: (:class:`ftscale.laws.covariate.CovariateLaw`); None: X itself.
    covariate: ClassVar[str | None] = None
    _SCALE_BOUNDS = (-30.0, 50.0)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("short") and "name" in cls.__dict__:
            cls.short = cls.name

    _EXPONENT_BOUNDS = (-2.0, 5.0)

    def __init__(
        self,
        *,
        huber_delta: float = 1e-3,
        space: str = "linear",
        grid: dict[str, tuple[float, ...]] | None = None,
        n_bootstrap: int = 0,
        seed: int = 0,
        n_polish: int = 3,
        max_iter: int = 150,
        screen: bool = True,
    ):
        self.huber_delta = huber_delta
        self.space = space
        self.grid = grid
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.n_polish = n_polish
        self.max_iter = max_iter
        self.screen = screen

    # -- hyper-parameters (scikit-learn's conventions) -------------------------------------------
    @classmethod
    def _param_keys(cls) -> list[str]:
        # every constructor up the MRO: a subclass adds its own (``**kw`` passes the rest on)
        keys: list[str] = []
        for klass in cls.__mro__:
            if "__init__" in klass.__dict__ and issubclass(klass, ScalingLaw):
                sig = inspect.signature(klass.__dict__["__init__"])
                keys += [
                    k
                    for k, p in sig.parameters.items()
                    if k != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                ]
        return list(dict.fromkeys(keys))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyper-parameters (the constructor's arguments), name -> value; never fitted
        values. ``deep`` is accepted for scikit-learn compatibility (a law holds no
        sub-estimators)."""
        return {k: getattr(self, k) for k in self._param_keys()}

    def set_params(self, **params: Any) -> ScalingLaw:
        """Set hyper-parameters by name (an unknown name is a :class:`UserError`); fitted
        values are untouched (refit to use the new ones). Returns self."""
        keys = self._param_keys()
        unknown = sorted(set(params) - set(keys))
        if unknown:
            raise UserError(
                f"unknown hyper-parameters {unknown} of the {self.name} law "
                f"(known: {', '.join(keys)})"
            )
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def clone(self) -> ScalingLaw:
        """A new unfitted estimator of the same form with (copies of) the same hyper-parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    # -- the one method a law form implements ------------------------------------------------
    @staticmethod
    def log_pred(
        theta: np.ndarray, x: np.ndarray | None, d: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """log L_hat (S, N) and its gradient in free parameters (S, N, P).

        ``theta`` (S, P) free parameters, ``x`` (N,) log factor values (None for one-factor
        forms), ``d`` (N,) log data sizes.
        """
        raise NotImplementedError

    # -- parameter spaces ---------------------------------------------------------------------
    @classmethod
    def to_free(cls, params: dict[str, float]) -> np.ndarray:
        """Public parameters -> free vector (logs of the scale parameters)."""
        out = []
        for k in cls.param_names:
            v = float(params[k])
            if k in cls.log_params:
                if not v > 0:
                    raise UserError(f"parameter {k} must be positive, got {v}")
                v = np.log(v)
            out.append(v)
        return np.array(out)

    @classmethod
    def from_free(cls, theta: np.ndarray) -> dict[str, float]:
        """Free vector -> public parameters."""
        return {
            k: float(np.exp(v)) if k in cls.log_params else float(v)
            for k, v in zip(cls.param_names, theta, strict=True)
        }

    def start_grid(self, fixed: dict[str, float] | None = None) -> np.ndarray:
        """The grid of starts (S, P) in free space; fixed parameters take their one value."""
        grid = dict(self.default_grid)
        if self.grid:
            unknown = set(self.grid) - set(self.param_names)
            if unknown:
                raise UserError(f"grid names unknown parameters {sorted(unknown)} of {self.name}")
            grid.update(self.grid)
        fixed_free = {}
        if fixed:
            vec = dict(zip(self.param_names, self.to_free({**self._dummy(), **fixed}), strict=True))
            fixed_free = {k: vec[k] for k in fixed}
        axes = [(fixed_free[k],) if k in fixed_free else tuple(grid[k]) for k in self.param_names]
        return np.array(list(itertools.product(*axes)), dtype=float)

    @classmethod
    def free_bounds(cls) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) arrays of the free-parameter box."""
        box = [
            cls.bounds.get(k, cls._SCALE_BOUNDS if k in cls.log_params else cls._EXPONENT_BOUNDS)
            for k in cls.param_names
        ]
        return np.array([b[0] for b in box]), np.array([b[1] for b in box])

    @classmethod
    def _dummy(cls) -> dict[str, float]:
        return dict.fromkeys(cls.param_names, 1.0)

    # -- inputs -------------------------------------------------------------------------------
    def map_log_x(self, x: np.ndarray | None) -> np.ndarray | None:
        """The law's own log factor at log factor values ``x``: ``x`` itself, except for a
        covariate law (:class:`ftscale.laws.covariate.CovariateLaw`)."""
        return x

    def covariate_of(self, X: Any) -> Any:
        """The law's own factor at factor values ``X`` (what :meth:`predict_with` takes): ``X``
        itself, except for a covariate law."""
        if self.covariate is None or X is None or self.n_factors == 1:
            return X
        X = np.asarray(X, dtype=float)
        return np.exp(self.map_log_x(np.log(X).ravel())).reshape(X.shape)

    def _logs(self, X: np.ndarray | None, D: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        D = np.asarray(D, dtype=float).ravel()
        if np.any(~np.isfinite(D)) or np.any(D < 0):
            raise UserError("data sizes must be non-negative and finite")
        if np.any(D == 0) and not self.accepts_zero_data:
            raise UserError(
                f"data sizes must be positive for the {self.name} law (a zero-shot point, data "
                "size 0, needs a law with a pre-learned data size D_l)"
            )
        with np.errstate(divide="ignore"):
            logd = np.log(D)  # D = 0: -inf, which the forms with D_l handle
        if self.n_factors == 1:
            return None, logd
        if X is None:
            raise UserError(f"law {self.name} needs a factor (X) besides the data size")
        X = np.asarray(X, dtype=float).ravel()
        if X.shape != D.shape:
            raise UserError("factor and data size must have the same length")
        if np.any(~np.isfinite(X)) or np.any(X <= 0):
            raise UserError("factor values must be positive and finite")
        return self.map_log_x(np.log(X)), logd

    @staticmethod
    def _losses(L: np.ndarray, n: int) -> np.ndarray:
        L = np.asarray(L, dtype=float).ravel()
        if L.shape != (n,):
            raise UserError("losses and data sizes must have the same length")
        if np.any(~np.isfinite(L)):
            raise UserError("losses must be finite (found NaN or inf)")
        if np.any(L <= 0):
            raise UserError("losses must be positive (nats/token)")
        return L

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        X: np.ndarray | None,
        D: np.ndarray,
        L: np.ndarray,
        *,
        holdout: tuple[np.ndarray | None, np.ndarray, np.ndarray] | None = None,
        fixed: dict[str, float] | None = None,
    ) -> ScalingLaw:
        """Fit to losses ``L`` (nats/token) at factor values ``X`` and data sizes ``D`` (examples).

        ``X`` is None for one-factor forms. ``holdout`` = ``(X_h, D_h, L_h)`` is scored as
        ``delta_h_``. ``fixed`` holds parameters at given public values (the joint procedure's
        second stage: beta and E fixed, A and alpha refitted). Returns self.
        """
        with single_thread_blas():
            return self._fit(X, D, L, holdout=holdout, fixed=fixed)

    def _fit(self, X, D, L, *, holdout, fixed) -> ScalingLaw:
        x, d = self._logs(X, D)
        y = self._losses(L, d.size)
        fixed = dict(fixed or {})
        unknown = set(fixed) - set(self.param_names)
        if unknown:
            raise UserError(f"cannot fix unknown parameters {sorted(unknown)} of {self.name}")
        n_free = len(self.param_names) - len(fixed)
        if d.size < n_free:
            raise UserError(
                f"{d.size} points for {n_free} free parameters of the {self.name} law: "
                "need at least as many points as parameters"
            )
        free = np.array([k not in fixed for k in self.param_names])
        fun = huber_objective(self.log_pred, x, d, y, space=self.space, delta=self.huber_delta)
        starts = self.start_grid(fixed)
        box = self.free_bounds()
        starts = np.clip(starts, box[0], box[1])
        theta, f, _ = multistart(
            fun, starts, free=free, max_iter=self.max_iter, screen=self.screen, bounds=box
        )
        best = self._polish_best(fun, theta, f, free)
        #: The converged starts (free space) whose objective ties the best: where the points
        #: leave a direction of the parameters free (a flat valley), these are equally good
        #: fits that may extrapolate differently (see ftscale.analysis.calibrate).
        fin = np.isfinite(f)
        tie = fin & (f <= (f[fin].min() if fin.any() else 0.0) * (1 + TIE_RTOL) + 1e-15)
        self.tied_theta_ = theta[tie]
        self._theta = best[0]
        self.objective_ = best[1]
        self.converged_ = best[2]
        self.message_ = best[3]
        self.params_ = self.from_free(self._theta)
        lo, hi = self.free_bounds()
        at = free & ((self._theta <= lo + 1e-9) | (self._theta >= hi - 1e-9))
        #: Parameters that ended on their box: the data do not pin them down.
        self.at_bound_ = [k for k, a in zip(self.param_names, at, strict=True) if a]
        self.fixed_ = sorted(fixed)
        self.n_fit_ = int(d.size)
        self.n_starts_ = int(starts.shape[0])
        self.delta_e_ = float(
            np.mean(np.abs(np.exp(self.log_pred(self._theta[None], x, d)[0][0]) - y))
        )
        self.n_holdout_ = 0
        self.delta_h_ = None
        if holdout is not None and np.asarray(holdout[1]).size:
            self.delta_h_ = self.score(*holdout)
            self.n_holdout_ = int(np.asarray(holdout[1]).size)
        if not self.converged_:
            warnings.warn(
                f"{self.name} fit did not converge: {self.message_}",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.ci_ = {}
        self.bootstrap_params_ = None
        self.n_bootstrap_ = int(self.n_bootstrap)
        self.noise_scale_ = None
        self._data = (x, d, y, free)
        if self.n_bootstrap > 0:
            self._bootstrap(x, d, y, free)
        return self

    def bootstrap_noise(
        self, sd: np.ndarray, n_bootstrap: int, *, scale: float = 1.0, seed: int = 0
    ) -> ScalingLaw:
        """Parametric bootstrap of a fitted law: ``n_bootstrap`` loss vectors are simulated as
        the fit's predictions plus Gaussian noise of standard deviation ``scale * sd`` at each
        fitted point (``sd``: (N,) nats/token, e.g. the standard error of each point's seed mean
        plus the law's lack of fit), each is refitted from the fit's optimum (one batch), and
        the draws replace ``bootstrap_params_`` and ``ci_`` (95% percentile intervals).
        ``scale`` > 1 widens the draws (the cross-validated extrapolation error says by how
        much). Returns self."""
        self._check_fitted()
        x, d, y, free = self._data
        sd = np.broadcast_to(np.asarray(sd, dtype=float), y.shape)
        if n_bootstrap <= 0:
            return self
        with single_thread_blas():
            rng = np.random.default_rng(seed)
            pred = np.exp(self.log_pred(self._theta[None], x, d)[0][0])
            ys = pred[None, :] + scale * sd[None, :] * rng.standard_normal((n_bootstrap, y.size))
            ys = np.maximum(ys, 1e-6 * np.max(pred))  # losses stay positive
            fun = huber_objective(self.log_pred, x, d, ys, space=self.space, delta=self.huber_delta)
            self._refit_draws(fun, n_bootstrap, free)
        self.n_bootstrap_ = int(n_bootstrap)
        self.noise_scale_ = float(scale)
        return self

    def draw_predictions(self, X: np.ndarray | None, D: np.ndarray) -> np.ndarray | None:
        """Predictions (R, N) of every bootstrap draw at (``X``, ``D``), nats/token; None
        without draws. Draws that predict no finite loss give NaN."""
        self._check_fitted()
        draws = self.bootstrap_params_
        if draws is None or len(draws) == 0:
            return None
        D = np.asarray(D, dtype=float).ravel()
        x = (
            None
            if self.n_factors == 1
            else self.map_log_x(np.log(np.broadcast_to(X, D.shape).astype(float)))
        )
        with np.errstate(all="ignore"):
            cols = [
                np.log(np.where(v > 0, v, np.nan)) if k in self.log_params else v
                for k, v in zip(self.param_names, np.asarray(draws, dtype=float).T, strict=True)
            ]
            lp, _ = self.log_pred(np.stack(cols, axis=1), x, np.log(D))
        return np.exp(lp)

    def _polish_best(
        self, fun, theta: np.ndarray, f: np.ndarray, free: np.ndarray
    ) -> tuple[np.ndarray, float, bool, str]:
        finite = np.flatnonzero(np.isfinite(f))
        if finite.size == 0:
            return theta[0], float("inf"), False, "no start gave a finite objective"
        order = finite[np.argsort(f[finite])]
        # Distinct basins only: starts that reached the same objective (the same point, or the
        # same flat valley) need one polish.
        picked: list[int] = []
        for i in order:
            if all(abs(f[i] - f[j]) > 1e-6 * abs(f[j]) for j in picked):
                picked.append(i)
            if len(picked) >= self.n_polish:
                break
        results = [
            polish(fun, theta[i], free=free, bounds=self.free_bounds(), max_iter=4 * self.max_iter)
            for i in picked
        ]
        return min(results, key=lambda r: r[1])

    def _bootstrap(self, x, d, y, free) -> None:
        """Refit on ``n_bootstrap`` resamples of the points, all in one batch, from the best fit."""
        rng = np.random.default_rng(self.seed)
        n = d.size
        counts = np.stack(
            [np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(self.n_bootstrap)]
        ).astype(float)
        fun = huber_objective(
            self.log_pred, x, d, y, space=self.space, delta=self.huber_delta, weights=counts
        )
        self._refit_draws(fun, self.n_bootstrap, free)

    def _refit_draws(self, fun: Any, n: int, free: Any) -> None:
        """Refit the batched objective ``fun`` (``n`` resampled or simulated data sets) from
        the fit's optimum; the finite draws become ``bootstrap_params_`` and their 95%
        percentile intervals ``ci_``."""
        starts = np.repeat(self._theta[None, :], n, axis=0)
        theta, f, conv = batched_lbfgs(
            fun, starts, free=free, max_iter=self.max_iter, bounds=self.free_bounds()
        )
        pub = np.array([list(self.from_free(t).values()) for t in theta[np.isfinite(f)]])
        self.bootstrap_params_ = pub
        self.bootstrap_converged_ = float(np.mean(conv))
        if len(pub):
            lo, hi = np.percentile(pub, [2.5, 97.5], axis=0)
            self.ci_ = {
                k: (float(a), float(b)) for k, a, b in zip(self.param_names, lo, hi, strict=True)
            }

    # -- using a fit --------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise UserError(f"the {self.name} law is not fitted")

    def predict(self, X: np.ndarray | float | None, D: np.ndarray | float) -> np.ndarray:
        """Predicted loss (nats/token) at factor ``X`` and data size ``D`` (examples); pure."""
        self._check_fitted()
        return self.predict_with(self.params_, self.covariate_of(X), D)

    @classmethod
    def predict_with(
        cls, params: dict[str, float], X: np.ndarray | float | None, D: np.ndarray | float
    ) -> np.ndarray:
        """Predicted loss for given public parameters (broadcasts X against D)."""
        D = np.asarray(D, dtype=float)
        if cls.n_factors == 2:
            X, D = np.broadcast_arrays(np.asarray(X, dtype=float), D)
            x = np.log(X).ravel()
        else:
            x = None
        theta = cls.to_free(params)[None, :]
        with np.errstate(divide="ignore"):
            logd = np.log(D).ravel()
        lp, _ = cls.log_pred(theta, x, logd)
        return np.exp(lp[0]).reshape(D.shape)

    def predict_interval(
        self, X: np.ndarray | float | None, D: np.ndarray | float, level: float = 0.95
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Bootstrap percentile interval of the prediction, or None without bootstrap."""
        self._check_fitted()
        if self.bootstrap_params_ is None or len(self.bootstrap_params_) == 0:
            return None
        C = self.covariate_of(X)
        preds = np.stack(
            [
                self.predict_with(dict(zip(self.param_names, row, strict=True)), C, D)
                for row in self.bootstrap_params_
            ]
        )
        q = 50 * (1 - level)
        lo, hi = np.percentile(preds, [q, 100 - q], axis=0)
        return lo, hi

    def score(self, X: np.ndarray | None, D: np.ndarray, L: np.ndarray) -> float:
        """Mean absolute deviation |L_hat - L| (nats/token): Delta_e on fitted points,
        Delta_h on held-out ones."""
        self._check_fitted()
        x, d = self._logs(X, D)
        y = self._losses(L, d.size)
        pred = np.exp(self.log_pred(self._theta[None], x, d)[0][0])
        return float(np.mean(np.abs(pred - y)))

    def load_fitted(self, params: dict[str, float]) -> ScalingLaw:
        """Load fitted public parameters (e.g. from a fits file) without fitting; returns self.
        (Hyper-parameters are set by :meth:`set_params`.)"""
        missing = set(self.param_names) - set(params)
        if missing:
            raise UserError(f"{self.name} law parameters missing: {sorted(missing)}")
        self._theta = self.to_free(params)
        self.params_ = self.from_free(self._theta)
        self.bootstrap_params_ = None
        self.n_bootstrap_ = 0
        self.ci_ = {}
        return self
