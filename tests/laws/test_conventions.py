"""Laws follow scikit-learn's conventions: get_params/set_params for hyper-parameters, clone,
fitted values in attributes ending in ``_``, load_fitted for fitted parameters."""

import numpy as np
import pytest

from ftscale.errors import UserError
from ftscale.laws import LAWS, get_law

TRUE = {"A": 20.0, "alpha": 0.3, "beta": 0.4, "E": 1.5}


def _data():
    x = np.repeat([1e6, 1e7, 1e8], 4)
    d = np.tile([100.0, 300.0, 1000.0, 3000.0], 3)
    return x, d, get_law("multiplicative").predict_with(TRUE, x, d)


@pytest.mark.parametrize("name", list(LAWS))
def test_get_params_are_the_constructor_arguments(name):
    law = get_law(name)(n_bootstrap=7, seed=3, space="log")
    params = law.get_params()
    assert params["n_bootstrap"] == 7 and params["seed"] == 3 and params["space"] == "log"
    assert not any(k.endswith("_") for k in params)
    assert type(law)(**params).get_params() == params


def test_set_params_sets_hyper_parameters_and_rejects_unknown_ones():
    law = get_law("multiplicative")()
    assert law.set_params(huber_delta=0.01, seed=5) is law
    assert law.huber_delta == 0.01 and law.seed == 5
    with pytest.raises(UserError, match="unknown hyper-parameters"):
        law.set_params(A=1.0)


def test_clone_is_unfitted_with_the_same_hyper_parameters():
    law = get_law("multiplicative")(grid={"E": (0.0,)}, n_bootstrap=4).fit(*_data())
    twin = law.clone()
    assert type(twin) is type(law) and twin.get_params() == law.get_params()
    assert twin.grid is not law.grid  # a copy, as scikit-learn's clone makes
    assert not hasattr(twin, "params_")
    with pytest.raises(UserError, match="not fitted"):
        twin.predict(1e7, 100.0)
    assert law.n_bootstrap_ == 4 and law.bootstrap_params_.shape[0] <= 4


def test_load_fitted_loads_fitted_values_not_hyper_parameters():
    law = get_law("multiplicative")(seed=9).load_fitted(TRUE)
    assert law.params_ == pytest.approx(TRUE) and law.seed == 9
    assert float(law.predict(1e7, 300.0)) == pytest.approx(
        float(get_law("multiplicative").predict_with(TRUE, 1e7, 300.0))
    )
    with pytest.raises(UserError, match="missing"):
        get_law("multiplicative")().load_fitted({"A": 1.0})


def test_bootstrap_noise_leaves_the_hyper_parameter_alone():
    law = get_law("multiplicative")().fit(*_data())
    law.bootstrap_noise(np.full(12, 0.01), 5)
    assert law.n_bootstrap == 0 and law.n_bootstrap_ == 5


def test_p_best_is_the_share_of_paired_draws_where_a_candidate_is_lowest():
    from ftscale.laws.recommend import p_best_of

    preds = np.array([[1.0, 2.0, 1.0, np.nan, 1.0], [2.0, 1.0, 3.0, 0.5, 2.0]])
    probs, n = p_best_of(preds)
    assert n == 4 and probs.tolist() == [0.75, 0.25]  # the draw with a NaN is left out
    assert p_best_of(np.array([[np.nan], [1.0]])) is None
