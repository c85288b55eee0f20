"""Reference fitting of the rectified law as Lin et al. (ICML 2024) fit it, re-implemented from
the description of ``fit_our_law`` in the paper's public code (``src/fit_law.py``; only the
fitting code, none of its data), for the side-by-side extrapolation check of bench_selection.py.

Their parametrisation, in log data size x and log loss y: L = (A - |E|) / (1 + e^(beta x + B))
+ |E| (the rectified law with D_l = e^-B). Stage one fits (A, B, beta, E) together with one
auxiliary Z_i = e^(beta x_i + B) per point (squared, to stay positive), minimising the mean
squared error of y plus the mean squared error of log Z_i against beta x_i + B, with scipy's
default BFGS from A = max L, E = geometric mean of the extremes, B = 0, beta = 1. Stage two
keeps (B, beta) and refits (A, E) on the mean squared log error. A fit is kept only if A > E.
A zero-shot point (data size 0) enters at x = log(1e-10), as in their selection code.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize


def predict_log(x: np.ndarray, A: float, B: float, beta: float, E: float) -> np.ndarray:
    """Log loss at log data sizes ``x`` for their parameters."""
    return np.log((A - abs(E)) / (1 + np.exp(beta * x + B)) + abs(E))


def fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float] | None:
    """Their two-stage fit of log losses ``y`` at log data sizes ``x``; None if no fit has A > E."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n_par = 4
    best, best_loss = None, np.inf
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for _ in range(3):  # their three restarts (from the same start)
            init = np.array([np.exp(y.max()), 0.0, 1.0, np.exp((y.max() + y.min()) / 2)])

            def stage1(p):
                z = p[n_par:] ** 2
                A, B, beta, E = p[:n_par]
                ly = np.mean((np.log(A + abs(E) * z) - np.log(1 + z) - y) ** 2)
                lx = np.mean((np.log(z) - beta * x - B) ** 2)
                return ly + lx

            p = minimize(stage1, np.concatenate([init, np.ones_like(x)])).x
            A, B, beta, E = p[:n_par]

            def stage2(ae, B=B, beta=beta):
                return np.mean((predict_log(x, ae[0], B, beta, ae[1]) - y) ** 2)

            res = minimize(stage2, [A, E])
            A, E = res.x
            if res.fun < best_loss and A > E:
                best_loss, best = res.fun, (float(A), float(B), float(beta), float(E))
    return best
