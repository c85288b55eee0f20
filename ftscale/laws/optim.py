"""The fitting machinery shared by every law: the summed Huber objective and a batched L-BFGS.

A law supplies ``log_pred(theta, x, d) -> (lp, g)``: the log of its predicted loss for a batch of
free-parameter vectors ``theta`` (S, P) at log factor values ``x`` (N,) and log data sizes ``d``
(N,), and the gradient ``g = d lp / d theta`` (S, N, P). Everything here works on that contract.

Why batched: the paper (and the Chinchilla replications) keep the best of a grid of thousands of
initialisations. Running scipy once per start costs ~0.1 s of Python overhead each; running one
L-BFGS whose every array has a leading "start" axis costs about as much as a single start. The
same batch axis carries bootstrap replicates (one weight vector per replicate).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.optimize

#: ``fun(theta (S, P), rows (S,)) -> (f (S,), g (S, P))``; ``rows`` index the batch (weights).
BatchedObjective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
LogPred = Callable[[np.ndarray, np.ndarray | None, np.ndarray], tuple[np.ndarray, np.ndarray]]


def huber_objective(
    log_pred: LogPred,
    x: np.ndarray | None,
    d: np.ndarray,
    y: np.ndarray,
    *,
    space: str = "linear",
    delta: float = 1e-3,
    weights: np.ndarray | None = None,
) -> BatchedObjective:
    """Return the batched objective: SUM over points of ``w * Huber_delta(residual)``.

    ``y`` is the observed loss (nats/token). The residual is ``pred - y`` in ``"linear"`` space
    (the paper's Eq. 2) or ``log pred - log y`` in ``"log"`` space. A sum, not a mean: with
    delta = 1e-3 a mean makes the objective so flat that L-BFGS stops at its first iterate.
    ``weights`` is (N,) or (R, N) with one row per batch member (bootstrap replicate counts);
    ``y`` likewise (N,) or (R, N) (a parametric bootstrap: one simulated loss vector per member).
    """
    if space not in ("linear", "log"):
        raise ValueError(f"space must be 'linear' or 'log', not {space!r}")
    y_all = np.asarray(y, dtype=float)
    logy_all = np.log(y_all)
    w_all = None if weights is None else np.asarray(weights, dtype=float)

    def fun(theta: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Trial steps of the line search may overflow; those rows get f = inf and are rejected.
        yy = y_all if y_all.ndim == 1 else y_all[rows]
        with np.errstate(all="ignore"):
            lp, g = log_pred(theta, x, d)
            if space == "linear":
                pred = np.exp(lp)
                r = pred - yy
            else:
                r = lp - (logy_all if y_all.ndim == 1 else logy_all[rows])
            a = np.abs(r)
            quad = a <= delta
            h = np.where(quad, 0.5 * r * r, delta * (a - 0.5 * delta))
            psi = np.where(quad, r, delta * np.sign(r))
            if w_all is not None:
                w = w_all if w_all.ndim == 1 else w_all[rows]
                h = h * w
                psi = psi * w
            f = h.sum(axis=1)
            # d r / d theta = pred * d lp / d theta in linear space; a batched mat-vec, not an
            # (S, N, P) temporary.
            coef = psi * pred if space == "linear" else psi
            grad = np.matmul(coef[:, None, :], g)[:, 0, :]
        f = np.where(np.isfinite(f) & np.isfinite(grad).all(axis=1), f, np.inf)
        return f, grad

    return fun


def batched_lbfgs(
    fun: BatchedObjective,
    theta0: np.ndarray,
    *,
    free: np.ndarray | None = None,
    max_iter: int = 300,
    memory: int = 8,
    ftol: float = 1e-11,
    gtol: float = 1e-12,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise ``fun`` from every row of ``theta0`` (S, P) at once with L-BFGS.

    ``free`` (P,) bool marks the coordinates that move (the others stay at their start value:
    the joint procedure holds beta and E fixed this way). Each row stops on its own when its
    relative decrease falls under ``ftol``, its largest gradient under ``gtol``, or its
    backtracking line search fails. ``bounds`` = (lower, upper) (P,) clips every trial point
    (projected steps: enough for the warm phase; the scipy polish handles bounds exactly). Returns ``(theta, f, converged)`` with ``converged`` (S,) bool
    (False for rows that hit ``max_iter`` or whose objective is not finite).
    """
    theta = np.array(theta0, dtype=float, copy=True)
    n, p = theta.shape
    mask = np.ones(p, dtype=bool) if free is None else np.asarray(free, dtype=bool)
    rows_all = np.arange(n)
    f, g = fun(theta, rows_all)
    g = g * mask
    converged = np.zeros(n, dtype=bool)
    active = np.isfinite(f)
    s_hist = np.zeros((memory, n, p))
    y_hist = np.zeros((memory, n, p))
    rho = np.zeros((memory, n))
    first = np.ones(n, dtype=bool)
    for it in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        gi = g[idx]
        # Two-loop recursion over the ring buffer, newest pair first; empty slots have rho = 0.
        q = gi.copy()
        alphas = np.zeros((memory, idx.size))
        order = [(it - 1 - k) % memory for k in range(memory)]
        for k in order:
            a = rho[k, idx] * np.einsum("sp,sp->s", s_hist[k, idx], q)
            alphas[k] = a
            q -= a[:, None] * y_hist[k, idx]
        newest = order[0]
        sy = np.einsum("sp,sp->s", s_hist[newest, idx], y_hist[newest, idx])
        yy = np.einsum("sp,sp->s", y_hist[newest, idx], y_hist[newest, idx])
        scale = np.where((rho[newest, idx] > 0) & (yy > 0), sy / np.where(yy > 0, yy, 1.0), 1.0)
        r = q * scale[:, None]
        for k in reversed(order):
            b = rho[k, idx] * np.einsum("sp,sp->s", y_hist[k, idx], r)
            r += s_hist[k, idx] * (alphas[k] - b)[:, None]
        direction = -r * mask
        slope = np.einsum("sp,sp->s", direction, gi)
        bad = ~(slope < 0)
        # Without curvature information the first step is scaled to move ~0.1 in parameter space.
        gnorm = np.abs(gi).max(axis=1)
        steepest = -gi / np.where(gnorm > 0, gnorm, 1.0)[:, None] * 0.1
        use_sd = bad | first[idx]
        direction[use_sd] = steepest[use_sd]
        slope = np.einsum("sp,sp->s", direction, gi)
        # Batched backtracking (Armijo): only rows that fail are re-evaluated at a shorter step.
        step = np.ones(idx.size)
        accepted = np.zeros(idx.size, dtype=bool)
        f_new = np.full(idx.size, np.inf)
        g_new = np.zeros_like(gi)
        pending = np.arange(idx.size)
        for _ in range(30):
            if pending.size == 0:
                break
            rows = idx[pending]
            trial = theta[rows] + step[pending, None] * direction[pending]
            if bounds is not None:
                trial = np.clip(trial, bounds[0], bounds[1])
            ft, gt = fun(trial, rows)
            ok = ft <= f[rows] + 1e-4 * step[pending] * slope[pending]
            acc = pending[ok]
            accepted[acc] = True
            f_new[acc] = ft[ok]
            g_new[acc] = gt[ok] * mask
            pending = pending[~ok]
            step[pending] *= 0.3
        fail = ~accepted
        if fail.any():
            # No decrease along a descent direction: we sit at a (numerical) minimum.
            rows = idx[fail]
            converged[rows] = np.isfinite(f[rows])
            active[rows] = False
        ok_idx = np.flatnonzero(accepted)
        rows = idx[ok_idx]
        s = step[ok_idx, None] * direction[ok_idx]
        if bounds is not None:
            s = np.clip(theta[rows] + s, bounds[0], bounds[1]) - theta[rows]
        yv = g_new[ok_idx] - g[rows]
        slot = it % memory
        syv = np.einsum("sp,sp->s", s, yv)
        good = syv > 1e-300
        s_hist[slot, rows] = s
        y_hist[slot, rows] = yv
        rho[slot, rows] = np.where(good, 1.0 / np.where(good, syv, 1.0), 0.0)
        f_old = f[rows]
        theta[rows] += s
        f[rows] = f_new[ok_idx]
        g[rows] = g_new[ok_idx]
        first[rows] = False
        small_df = (f_old - f[rows]) <= ftol * np.maximum(np.abs(f_old), 1e-300)
        small_g = np.abs(g[rows]).max(axis=1) <= gtol
        done = small_df | small_g
        converged[rows[done]] = True
        active[rows[done]] = False
    return theta, f, converged


def polish(
    fun: BatchedObjective,
    theta0: np.ndarray,
    *,
    free: np.ndarray | None = None,
    max_iter: int = 500,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, float, bool, str]:
    """Refine one start with scipy's L-BFGS-B and the analytic gradient.

    Returns ``(theta, f, converged, message)``. Tolerances are tight because the summed Huber
    objective is small in absolute terms (~1e-3 for good fits) and scipy's ``ftol`` is relative
    to ``max(|f|, 1)``.
    """
    theta0 = np.asarray(theta0, dtype=float)
    mask = np.ones(theta0.size, dtype=bool) if free is None else np.asarray(free, dtype=bool)
    base = theta0.copy()
    row = np.zeros(1, dtype=int)

    def f_and_g(z: np.ndarray) -> tuple[float, np.ndarray]:
        full = base.copy()
        full[mask] = z
        f, g = fun(full[None, :], row)
        if not np.isfinite(f[0]):
            return 1e300, np.zeros(z.size)
        return float(f[0]), g[0][mask]

    x0 = theta0[mask] if bounds is None else np.clip(theta0[mask], bounds[0][mask], bounds[1][mask])
    res = scipy.optimize.minimize(
        f_and_g,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=None if bounds is None else list(zip(bounds[0][mask], bounds[1][mask], strict=True)),
        options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-14, "maxcor": 20},
    )
    full = base.copy()
    full[mask] = res.x
    f = float(res.fun)
    msg = str(res.message)
    # L-BFGS-B reports ABNORMAL when its line search cannot improve any further at these tight
    # tolerances; that is convergence if the gradient is negligible relative to the objective:
    # a move of 0.01 in any free parameter (a log-scale or an exponent) changes f by < 0.01%.
    _, g = f_and_g(res.x)
    flat = np.abs(g).max(initial=0.0) <= 1e-2 * max(f, 1e-9)
    converged = bool(res.success or ("ABNORMAL" in msg and flat)) and np.isfinite(f) and f < 1e300
    return full, f, converged, msg


def multistart(
    fun: BatchedObjective,
    starts: np.ndarray,
    *,
    free: np.ndarray | None = None,
    max_iter: int = 300,
    screen: bool = True,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run batched L-BFGS from every start, by successive halving when the grid is large.

    With ``screen``, all starts take 3 L-BFGS iterations, the best tenth (at least 64) take 25
    more, and the best 5% of those (at least 16) run to convergence. Most of a Chinchilla-style grid falls into a
    handful of basins within a few iterations, so this keeps the grid's coverage at a fraction
    of the cost of running every start to convergence (the benchmark checks that the objective
    reached equals the full run's). Returns ``(theta, f, converged)`` for the surviving starts,
    sorted by objective.
    """
    theta = np.asarray(starts, dtype=float)
    if screen:
        for iters, keep, floor in ((3, 0.1, 64), (25, 0.05, 16)):
            if theta.shape[0] <= floor:
                break
            theta, f, _ = batched_lbfgs(fun, theta, free=free, max_iter=iters, bounds=bounds)
            n_keep = max(floor, int(np.ceil(keep * theta.shape[0])))
            order = np.argsort(np.where(np.isfinite(f), f, np.inf), kind="stable")[:n_keep]
            theta = theta[order]
    # The scipy polish that follows tightens the best few; here a looser stop suffices.
    theta, f, conv = batched_lbfgs(
        fun, theta, free=free, max_iter=max_iter, bounds=bounds, ftol=1e-9
    )
    order = np.argsort(np.where(np.isfinite(f), f, np.inf), kind="stable")
    return theta[order], f[order], conv[order]
