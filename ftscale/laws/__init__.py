"""Scaling-law estimators for finetuning (numpy and scipy only).

Law forms (one file each, registered in :data:`ftscale.laws.registry.LAWS`):

- ``multiplicative``: L = A * X^-alpha * D^-beta + E        (the paper's Eq. 1)
- ``additive``:       L = A * X^-alpha + B * D^-beta + E
- ``power``:          L = A * D^-beta + E
- ``rectified``:      L = B / (D_l + D^beta) + E                (Lin et al. 2024)
- ``multiplicative_rectified``: L = A * X^-alpha * (D + D_l)^-beta + E
- ``additive_rectified``:       L = A * X^-alpha + B * (D + D_l)^-beta + E
- ``lin_rectified``:            L = A * X^-alpha / (D_l + D^beta) + E
- ``zero_shot_rectified``:      L = A * (Z - E)^alpha * (D + D_l)^-beta + E
- ``zero_shot_scaled``:         L = A * (Z - E) * (D + D_l)^-beta + E

The two ``zero_shot_`` forms are covariate laws (:mod:`ftscale.laws.covariate`): the model enters
through Z, its zero-shot loss measured at each factor value, not through X.

X is a scaling factor (model parameters, pretraining tokens, PET size), D the finetuning data
size (examples), L a loss in nats/token. Estimator style: ``get_law("multiplicative")()
.fit(X, D, L)`` returns the estimator with ``params_``, ``ci_``, ``delta_e_``, ``delta_h_``,
``converged_``; ``predict(X, D)`` is pure. See docs/laws.md.
"""

from ftscale.laws.additive import AdditiveLaw
from ftscale.laws.base import ScalingLaw
from ftscale.laws.critical import closed_form, critical_data_size, crossings
from ftscale.laws.joint import JointLaw
from ftscale.laws.multiplicative import MultiplicativeLaw
from ftscale.laws.power import PowerLaw
from ftscale.laws.recommend import recommend
from ftscale.laws.rectified import RectifiedLaw
from ftscale.laws.registry import LAWS, get_law, make_law
from ftscale.laws.selection import compare_rules, select, select_model, simulate_candidates

__all__ = [
    "LAWS",
    "AdditiveLaw",
    "JointLaw",
    "MultiplicativeLaw",
    "PowerLaw",
    "RectifiedLaw",
    "ScalingLaw",
    "closed_form",
    "compare_rules",
    "critical_data_size",
    "crossings",
    "get_law",
    "make_law",
    "recommend",
    "select",
    "select_model",
    "simulate_candidates",
]
