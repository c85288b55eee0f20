"""Active study design: the next runs that most sharpen the study's answer.

A *question* names the quantity whose uncertainty the study should shrink:

- ``recommend`` (default): the probability that the recommended method is **not** the best at
  model M and data size D (examples); default M the study's largest model, D the largest data
  size of the grid that every method runs (fixed, so that the question does not move as the
  design adds runs).
- ``critical m1,m2``: the width, in log10 of examples, of the 95% interval of the critical data
  size between methods m1 and m2 at model M (default the largest model).

Both are read off the bootstrap draws of each method's chosen law (by held-out error; the
study's fits document, :func:`ftscale.analysis.study.fit_study`). Each method's draws are treated as an
(unnormalised) sample of its law's uncertainty, independent across methods: method a's draw i
and method b's draw j form a joint draw with weight w_a(i) w_b(j).

Scoring a candidate run (an unfinished planned run of the grid) is *kernel-smoothed importance
weighting* over the existing draws, not a refit:

1. its outcome is simulated K times: a draw k of the method's law is picked and the loss is its
   prediction at the run's (model, data size) plus Gaussian seed noise of the study's observed
   seed standard deviation ``sigma`` (nats/token; pooled over points with two or more seeds,
   else the fits' mean absolute residual);
2. each simulated loss y reweights the method's draws by exp(-(y - mu_i)^2 / (2 s^2)), where
   mu_i is draw i's prediction there and s^2 = n_eff sigma^2 + h^2: ``n_eff`` = 1 + the seeds
   the point already has (the fit weighs each seed mean once, so one more seed of n + 1 moves
   the fitted point by 1/(n + 1) of its deviation), and h the kernel bandwidth
   1.06 sd(mu) R^-1/5 (Silverman's rule over the R draws), which keeps the weights from
   collapsing onto one draw when sigma is far below the draws' spread;
3. the question's uncertainty is recomputed under those weights and averaged over the K
   outcomes; the expected reduction is the current uncertainty minus that average.

Candidates are ranked by expected reduction per unit cost. Cost: :func:`estimate_runs` (mean
measured seconds of the same (model, method), else scaled by model size) times the run's
threads, in core-seconds; where nothing was measured, a relative cost proportional to
model_size x data_size (the units are then relative, ``cost_units`` says which). Runs that the
fit would hold out (at or beyond the largest value of a ``fit.holdout_largest`` column of their
(task, method)) are scored 0: they test the laws but do not sharpen them.

Before every compared method has a joint fit with draws, :func:`suggest` proposes the
cheapest block of runs (the m cheapest models x the k smallest data sizes, first seed) that
leaves at least ``MIN_FIT_POINTS`` fitted points, two factor values and two data sizes per
method after the hold-out.

Modules: :mod:`.question` (the question), :mod:`.uncertainty` (draws and the question's
uncertainty), :mod:`.scoring` (candidates and their scores), :mod:`.stop` (stopping criteria),
:mod:`.loop` (:func:`suggest` and :func:`run_adaptive`).
"""

from ftscale.study.adaptive.loop import (
    DEFAULT_UNTIL,
    fit_or_none,
    run_adaptive,
    suggest,
)
from ftscale.study.adaptive.question import Question, parse_question, resolve_question
from ftscale.study.adaptive.scoring import (
    MIN_FIT_POINTS,
    N_OUTCOMES,
    bootstrap_design,
    candidate_costs,
    score_candidates,
)
from ftscale.study.adaptive.stop import criterion_holds, parse_until
from ftscale.study.adaptive.uncertainty import (
    CRIT_RANGE,
    MAX_DRAWS,
    DesignState,
    current_answer,
    design_state,
    seed_sigma,
)

__all__ = [
    "CRIT_RANGE",
    "DEFAULT_UNTIL",
    "MAX_DRAWS",
    "MIN_FIT_POINTS",
    "N_OUTCOMES",
    "DesignState",
    "Question",
    "bootstrap_design",
    "candidate_costs",
    "criterion_holds",
    "current_answer",
    "design_state",
    "fit_or_none",
    "parse_question",
    "parse_until",
    "resolve_question",
    "run_adaptive",
    "score_candidates",
    "seed_sigma",
    "suggest",
]
