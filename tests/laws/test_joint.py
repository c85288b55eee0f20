"""The paper's joint procedure: shared beta, E from model-size and pretraining runs."""

import numpy as np
import pytest

from ftscale.laws import JointLaw, get_law


def test_joint_recovers_shared_and_per_factor_parameters():
    cls = get_law("multiplicative")
    rng = np.random.default_rng(0)
    beta, E = 0.15, 0.75
    truth = {
        "model_size": ({"A": 1.2e5, "alpha": 0.52}, [1e9, 2e9, 4e9, 8e9]),
        "pretrain_tokens": ({"A": 300.0, "alpha": 0.21}, [84e9, 140e9, 200e9, 283e9]),
        "pet_size": ({"A": 4.0, "alpha": 0.01}, [50, 100, 200, 400]),
    }
    blocks = {}
    for f, (p, xs) in truth.items():
        X, D = np.meshgrid(xs, np.geomspace(1e5, 4.5e6, 5))
        L = cls.predict_with({**p, "beta": beta, "E": E}, X.ravel(), D.ravel())
        blocks[f] = (X.ravel(), D.ravel(), L + 0.001 * rng.normal(size=L.size))
    extra = {"pet_size": blocks.pop("pet_size")}
    j = JointLaw("multiplicative").fit(blocks, extra=extra)
    assert j.shared_["beta"] == pytest.approx(beta, rel=0.05)
    assert j.shared_["E"] == pytest.approx(E, rel=0.02)
    assert set(j.laws_) == {"model_size", "pretrain_tokens", "pet_size"}
    for f, (p, _) in truth.items():
        fitted = j.laws_[f]
        assert fitted.params_["beta"] == j.shared_["beta"]
        assert fitted.params_["E"] == pytest.approx(j.shared_["E"])
        assert fitted.params_["alpha"] == pytest.approx(p["alpha"], abs=0.03)
    assert j.converged_
