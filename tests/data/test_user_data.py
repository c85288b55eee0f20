"""User data through the Task interface: every format and every bad input."""

from __future__ import annotations

import json

import pytest

from ftscale.data import Example, load_user_task
from ftscale.errors import UserError

ROWS = [{"src": f"source sentence {i}", "tgt": f"Zielsatz {i}", "l": "de"} for i in range(40)]


def _jsonl(path, rows=ROWS):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _delimited(path, sep, rows=ROWS, header=("src", "tgt", "l")):
    lines = [sep.join(header)] + [sep.join(r[h] for h in header) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _check(task, n_total=40, eval_size=None):
    counts = task.counts()
    assert sum(counts.values()) == n_total
    assert counts["dev"] == counts["test"] == (eval_size if eval_size is not None else 4)
    every = task.split("train") + task.split("dev") + task.split("test")
    assert sorted(e.source for e in every) == sorted(r["src"] for r in ROWS)
    assert all(isinstance(e, Example) and e.lang == "de" for e in every)
    assert task.languages == ("de",)


def test_jsonl(tmp_path):
    task = load_user_task(_jsonl(tmp_path / "d.jsonl"), "src", "tgt", "translate", lang="de")
    _check(task)
    assert task.name == "d"
    assert task.prompt(task.split("test")[0]).endswith("\n")


def test_csv_and_tsv_with_lang_field(tmp_path):
    for name, sep in (("d.csv", ","), ("d.tsv", "\t")):
        task = load_user_task(
            _delimited(tmp_path / name, sep),
            "src",
            "tgt",
            "summarize",
            lang_field="l",
            eval_size=5,
        )
        _check(task, eval_size=5)
        assert task.metric == ("rougeL",)


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    _check(load_user_task(path, "src", "tgt", "translate", lang="de"))


def test_save_to_disk_folder_keeps_its_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(ROWS[:30]),
            "validation": datasets.Dataset.from_list(ROWS[30:35]),
            "test": datasets.Dataset.from_list(ROWS[35:]),
        }
    )
    dd.save_to_disk(str(tmp_path / "ds"))
    task = load_user_task(tmp_path / "ds", "src", "tgt", "translate", lang_field="l")
    assert task.counts() == {"train": 30, "dev": 5, "test": 5}
    assert task.split("dev")[0].source == "source sentence 30"


def test_explicit_split_files_and_custom_prompt(tmp_path):
    paths = {
        "train": _jsonl(tmp_path / "train.jsonl", ROWS[:30]),
        "dev": _jsonl(tmp_path / "dev.jsonl", ROWS[30:35]),
        "test": _jsonl(tmp_path / "test.jsonl", ROWS[35:]),
    }
    task = load_user_task(
        paths, "src", "tgt", "translate", lang="de", prompt="EN: {source}\nDE ({lang}): "
    )
    ex = task.split("test")[0]
    assert task.prompt(ex) == "EN: source sentence 35\nDE (de): "
    assert task.subset(10, 0) == task.subset(30, 0)[:10]


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such file") as exc:
        load_user_task(tmp_path / "nope.jsonl", "src", "tgt", "translate")
    assert "nope.jsonl" in str(exc.value)


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"src": "a", "tgt": "b"}\n{"src": "a", "tgt": \n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.jsonl:2: malformed JSON"):
        load_user_task(path, "src", "tgt", "translate")


def test_jsonl_row_missing_field(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [*ROWS[:3], {"src": "only source"}])
    with pytest.raises(UserError, match=r"d\.jsonl:4: field 'tgt' is missing"):
        load_user_task(path, "src", "tgt", "translate")


def test_csv_without_named_fields(tmp_path):
    path = _delimited(tmp_path / "d.csv", ",")
    with pytest.raises(
        UserError, match=r"d\.csv:2: field 'target' is missing \(the record has: src, tgt, l\)"
    ):
        load_user_task(path, "src", "target", "translate")


def test_parquet_without_named_fields(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    with pytest.raises(UserError, match=r"d\.parquet:1: field 'x' is missing"):
        load_user_task(path, "x", "tgt", "translate")


def test_empty_split(tmp_path):
    paths = {"train": _jsonl(tmp_path / "t.jsonl"), "dev": tmp_path / "dev.jsonl"}
    paths["dev"].write_text("\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"dev\.jsonl: split 'dev' is empty"):
        load_user_task(paths, "src", "tgt", "translate")
    (tmp_path / "empty.csv").write_text("src,tgt\n", encoding="utf-8")
    with pytest.raises(UserError, match="no examples"):
        load_user_task(tmp_path / "empty.csv", "src", "tgt", "translate")


def test_subset_larger_than_split(tmp_path):
    task = load_user_task(_jsonl(tmp_path / "d.jsonl"), "src", "tgt", "translate")
    with pytest.raises(UserError, match="larger than the training split"):
        task.subset(33, 0)


def test_unknown_kind_format_and_prompt(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl")
    with pytest.raises(UserError, match="unknown task kind"):
        load_user_task(path, "src", "tgt", "classify")
    with pytest.raises(UserError, match="must contain"):
        load_user_task(path, "src", "tgt", "translate", prompt="no placeholder")
    with pytest.raises(UserError, match="bad prompt template"):
        load_user_task(path, "src", "tgt", "translate", prompt="{source} {target}")
    other = tmp_path / "d.xlsx"
    other.write_bytes(b"PK")
    with pytest.raises(UserError, match="unknown data format"):
        load_user_task(other, "src", "tgt", "translate")


@pytest.mark.parametrize(
    "files", [{"dataset_info.json": '{"x": 1}'}, {"dataset_info.json": "{}", "state.json": "{}"}]
)
def test_a_fake_datasets_folder_is_a_one_line_error(tmp_path, files):
    # issue 17, defect 8: a traceback from datasets before
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match="not a readable `datasets` folder"):
        load_user_task(tmp_path, source_field="a", target_field="b", kind="translate")
