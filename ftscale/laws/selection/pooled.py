"""``ftscale`` (the default): each candidate's post-power line, with its slope calibrated on how
the pool's own curves continued within the budget.

Extrapolating 10-500x past the budget, the error is the slope's: a line through 3-5 noisy points
in log-log has a slope error of a few hundredths, times log(target / budget) (up to 6), i.e.
tenths of a nat, more than the gaps between candidates; and a curve still bending out of its
flat pre-power phase, or towards its floor, does not keep its slope. How much of a candidate's
current slope carries on is what the budget-best rule (none of it) and Accept-then-Stop (all of
it; Lin et al., ICML 2024) disagree on, and the answer differs from task to task. The pool
answers it from its own past:

1. Lines. Each candidate's points are fitted by Accept-then-Stop's post-power line (:mod:`.ats`:
   log loss against log data size, the flat phase detected and left out).
2. Backtest. The same fit is made with the candidate's last one and last two points left out,
   and the slope at which the curve actually went on, from the line's value at that earlier
   budget to the last measured point, is recorded. Across all candidates this gives pairs
   (slope seen, slope that followed).
3. Calibration. The future slope is modelled as alpha + gamma * (slope seen, moved by a share w
   towards the mean slope of the other members of its family, where a ``family`` is given),
   and (alpha, gamma, w) are chosen by least squares on the backtest pairs (gamma in [0, 1.2]:
   0 is the budget-best rule, 1 is Accept-then-Stop; w in [0, 1]). With fewer than 5 pairs
   (candidates with 3 points), gamma = 1, w = 0: Accept-then-Stop's line.
4. Prediction. From the line's value at the largest size within the budget, the calibrated
   slope (never above 0: more finetuning data is not expected to raise the loss) runs to the
   target. The interval's width per unit of log data size is the spread of the backtest's
   residual slopes, plus the noise of the anchor; ``p_best`` is the probability of being lowest
   under these normal predictive distributions (deterministic quadrature).

Measured (docs/laws.md, benchmarks/bench_selection.py): on simulated pools of three kinds and on
the ftlm development curves it is at least as good as Accept-then-Stop and the budget-best rule
in mean PearCorr; every choice above was made on those, never on the acceptance benchmark.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from ftscale.laws.selection.ats import post_power_line
from ftscale.laws.selection.base import Curve, Prediction, SelectionMethod

#: Grids of the calibration: gamma (how much of the seen slope carries on) and w (the share
#: moved towards the family's mean slope).
_GAMMAS = np.round(np.arange(0.0, 1.2001, 0.05), 10)
_WS = np.round(np.arange(0.0, 1.0001, 0.1), 10)
#: Backtests: the fit with the last 1 and 2 points left out.
_BACKS = (1, 2)
#: Fewer backtest pairs than this: no calibration (Accept-then-Stop's line).
_MIN_PAIRS = 5


def _post_power_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    """(slope, intercept, points) of Accept-then-Stop's post-power line in log-log."""
    b, a, i = post_power_line(x, y)
    return b, a, int(x.size - i)


def _others_family_mean(values: np.ndarray, families: list) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``values`` over the OTHER members of each one's family, and whether there is
    one (no family given, or alone in it: no)."""
    mean = values.astype(float).copy()
    has = np.zeros(values.size, dtype=bool)
    for fam in {f for f in families if f is not None}:
        idx = np.array([i for i, f in enumerate(families) if f == fam])
        if idx.size < 2:
            continue
        total = values[idx].sum()
        mean[idx] = (total - values[idx]) / (idx.size - 1)
        has[idx] = True
    return mean, has


def calibrate(
    xs: list[np.ndarray], ys: list[np.ndarray], families: list
) -> tuple[float, float, float, float, int]:
    """(alpha, gamma, w, residual sd of slopes, pairs) from the backtests of the curves
    (log data sizes ``xs``, log losses ``ys``)."""
    seen, after, fam_mean, has_fam = [], [], [], []
    for back in _BACKS:
        rows, fams = [], []
        for x, y, fam in zip(xs, ys, families, strict=True):
            j = x.size - 1 - back
            if j + 1 < 3:
                continue
            b, a, _ = _post_power_line(x[: j + 1], y[: j + 1])
            rows.append((b, (y[-1] - (a + b * x[j])) / (x[-1] - x[j])))
            fams.append(fam)
        if not rows:
            continue
        b_seen = np.array([r[0] for r in rows])
        m, h = _others_family_mean(b_seen, fams)
        seen.append(b_seen)
        after.append(np.array([r[1] for r in rows]))
        fam_mean.append(m)
        has_fam.append(h)
    if not seen or sum(s.size for s in seen) < _MIN_PAIRS:
        return 0.0, 1.0, 0.0, float("nan"), sum(s.size for s in seen)
    S, F = np.concatenate(seen), np.concatenate(after)
    M, H = np.concatenate(fam_mean), np.concatenate(has_fam)
    ws = _WS if H.any() else np.array([0.0])
    # Every (gamma, w) at once: predictions (G, W, n), alpha the mean residual (least squares).
    base = np.where(H[None, :], (1 - ws[:, None]) * S[None, :] + ws[:, None] * M[None, :], S)
    pred = _GAMMAS[:, None, None] * base[None, :, :]
    resid = F[None, None, :] - pred
    alpha = resid.mean(axis=2)
    sse = ((resid - alpha[..., None]) ** 2).sum(axis=2)
    gi, wi = np.unravel_index(int(np.argmin(sse)), sse.shape)
    sd = float(np.sqrt(sse[gi, wi] / max(S.size - 3, 1)))
    return float(alpha[gi, wi]), float(_GAMMAS[gi]), float(ws[wi]), sd, int(S.size)


class Pooled(SelectionMethod):
    name = "ftscale"
    min_points = 2
    level = 0.95

    def predict(self, curves: list[Curve], budget: float, target: float):
        xs = [np.log(c.sizes) for c in curves]
        ys = [np.log(c.losses) for c in curves]
        families = [c.family for c in curves]
        alpha, gamma, w, sd_slope, n_pairs = calibrate(xs, ys, families)
        lines = [_post_power_line(x, y) for x, y in zip(xs, ys, strict=True)]
        b_now = np.array([ln[0] for ln in lines])
        m, h = _others_family_mean(b_now, families)
        slope = np.minimum(alpha + gamma * np.where(h, (1 - w) * b_now + w * m, b_now), 0.0)
        # Noise of one point (log loss), pooled over the lines with residual degrees of freedom.
        rss = dof = 0.0
        for (b, a, k), x, y in zip(lines, xs, ys, strict=True):
            if k > 2:
                rss += float(((y[-k:] - (a + b * x[-k:])) ** 2).sum())
                dof += k - 2
        noise = float(np.sqrt(rss / dof)) if dof > 0 else float("nan")
        lt = float(np.log(target))
        mean, sd = np.empty(len(curves)), np.empty(len(curves))
        for i, ((b, a, k), x) in enumerate(zip(lines, xs, strict=True)):
            anchor = a + b * x[-1]
            mean[i] = anchor + slope[i] * (lt - x[-1])
            s_slope = sd_slope if np.isfinite(sd_slope) else abs(b_now).mean() + 1e-3
            s_anchor = noise / np.sqrt(k) if np.isfinite(noise) else 0.0
            sd[i] = float(np.hypot(s_slope * (lt - x[-1]), s_anchor))
        p_best = _p_lowest(mean, sd)
        z = scipy.stats.norm.ppf(0.5 + self.level / 2)
        preds = [
            Prediction(
                c.name,
                float(np.exp(mean[i])),
                lines[i][2],
                float(np.exp(mean[i])),
                [float(np.exp(mean[i] - z * sd[i])), float(np.exp(mean[i] + z * sd[i]))],
                float(p_best[i]),
                extra={"slope": float(slope[i]), "seen_slope": float(b_now[i])},
            )
            for i, c in enumerate(curves)
        ]
        return preds, {
            "calibration": {
                "alpha": alpha,
                "gamma": gamma,
                "family_weight": w,
                "pairs": n_pairs,
                "slope_sd": sd_slope if np.isfinite(sd_slope) else None,
            },
            "noise": noise if np.isfinite(noise) else None,
            "level": self.level,
        }


def _p_lowest(mean: np.ndarray, sd: np.ndarray, n_per: int = 401) -> np.ndarray:
    """P(candidate i has the lowest value) for independent normals: quadrature on a grid that
    resolves every candidate's density (401 points over +-8 sd of each, merged)."""
    sd = np.maximum(sd, 1e-9)
    t = np.unique(
        np.concatenate(
            [np.linspace(m - 8 * s, m + 8 * s, n_per) for m, s in zip(mean, sd, strict=True)]
        )
    )
    pdf = scipy.stats.norm.pdf(t[None, :], mean[:, None], sd[:, None])
    logsf = scipy.stats.norm.logsf(t[None, :], mean[:, None], sd[:, None])
    others = np.exp(logsf.sum(axis=0)[None, :] - logsf)
    p = np.trapezoid(pdf * others, t, axis=1)
    total = p.sum()
    return p / total if total > 0 else np.full(mean.size, 1.0 / mean.size)
