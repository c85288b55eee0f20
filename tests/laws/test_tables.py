"""ftscale.tables: formats, validation with file and row, safe expressions, grouping."""

import pandas as pd
import pytest

from ftscale import tables
from ftscale.errors import UserError

DF = pd.DataFrame(
    {
        "method": ["fmt", "lora", "lora", "prompt"],
        "model_size": [1e9, 1e9, 4e9, 4e9],
        "data_size": [100, 200, 300, 400],
        "loss": [1.0, 0.9, 0.8, 0.7],
    }
)


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet", "jsonl"])
def test_round_trip_every_format(tmp_path, ext):
    path = tmp_path / f"t.{ext}"
    tables.write_table(DF, path)
    back = tables.read_table(path)
    pd.testing.assert_frame_equal(back.drop(columns=[tables.ROW]), DF, check_dtype=False)
    assert list(tmp_path.iterdir()) == [path]  # atomic: no temp file left


def test_where_expressions():
    assert tables.where(DF, 'model_size >= 1e9 and method == "lora"').tolist() == [
        False,
        True,
        True,
        False,
    ]
    assert tables.where(DF, "method in ['fmt', 'prompt'] or data_size / 100 == 2").sum() == 3
    assert tables.where(DF, "not (loss < 0.85)").tolist() == [True, True, False, False]
    for bad in (
        "loss <",
        "open('x')",
        "model_size.real",
        "nope == 1",
        "loss + 1",
        "[x for x in loss]",
    ):
        with pytest.raises(UserError, match="expression"):
            tables.where(DF, bad)


def test_validation_names_file_and_row(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"data_size": 10, "loss": 1.0}\n{"data_size": -1, "loss": 1.0}\n')
    df = tables.read_table(p)
    with pytest.raises(UserError, match=r"t.jsonl:2: size column 'data_size' must be positive"):
        tables.validate(df, str(p), sizes=("data_size",), losses=("loss",))
    p.write_text('{"data_size": 10}\nnot json\n')
    with pytest.raises(UserError, match=r"t.jsonl:2: invalid JSON"):
        tables.read_table(p)


def test_group_by_sorted_plain_keys():
    groups = tables.group_by(DF, ["method"])
    assert [g for g, _ in groups] == [{"method": "fmt"}, {"method": "lora"}, {"method": "prompt"}]
    assert tables.group_by(DF, [])[0][0] == {}
    with pytest.raises(UserError, match="missing group-by column"):
        tables.group_by(DF, ["task"])
