"""Property-based tests (hypothesis) of the study-file schema and the fits-file reader: any
document is either accepted or a one-line UserError, never a traceback (issue 17)."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftscale.errors import UserError
from ftscale.laws.io import load_fits
from ftscale.study.spec import parse_study

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["fmt", "lora", "prompt", "ftlm-1", "ftlm-2", "translate-en-de", "linear"]),
)
_values = st.recursive(
    _scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=8,
)
BASE = {
    "study": {
        "name": "s",
        "tasks": ["translate-en-de"],
        "factor": "model_size",
        "models": ["ftlm-1", "ftlm-2"],
        "methods": ["fmt", "lora"],
        "seeds": 1,
    },
    "data_sizes": {"fmt": [10, 20], "lora": [10, 20]},
    "training": {"steps": 2},
}
_KEYS = {
    "study": ["name", "tasks", "factor", "models", "methods", "seeds", "bogus"],
    "data_sizes": ["fmt", "lora", "prompt"],
    "pet_sizes": ["lora", "prompt", "fmt"],
    "training": ["steps", "epochs", "lr", "batch_size", "max_length", "device", "seed", "rank"],
    "fit": ["laws", "holdout_largest", "holdout", "space", "bootstrap", "huber_delta", "seed"],
    "transfer": ["enabled", "shots", "data_sizes", "sample", "decode"],
}


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(_KEYS)), st.integers(0, 7), _values),
        min_size=1,
        max_size=4,
    )
)
def test_study_files_are_parsed_or_refused(edits):
    data = json.loads(json.dumps(BASE))
    for table, k, value in edits:
        keys = _KEYS[table]
        data.setdefault(table, {})
        if isinstance(data[table], dict):
            data[table][keys[k % len(keys)]] = value
    try:
        parse_study(data)
    except UserError as exc:
        assert "\n" not in str(exc)


@SETTINGS
@given(_values, st.integers(0, 3))
def test_fits_files_are_read_or_refused(tmp_path, value, where):
    good = {
        "ftscale_fits": 1,
        "fits": [{"group": {}, "law": "power", "params": {"A": 1.0, "beta": 0.3, "E": 0.5}}],
    }
    doc = json.loads(json.dumps(good))
    rec = doc["fits"][0]
    if where == 0:
        doc = value
    elif where == 1:
        doc["ftscale_fits"] = value
    elif where == 2:
        rec["params"] = value
    else:
        rec["bootstrap_params"] = value
    path = tmp_path / "f.json"
    try:
        path.write_text(json.dumps(doc))
    except ValueError:
        return
    try:
        load_fits(str(path))
    except UserError as exc:
        assert "\n" not in str(exc)
