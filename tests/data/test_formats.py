"""Tasks from files in the shapes people keep finetuning data in, and every bad file."""

from __future__ import annotations

import json

import pytest

from ftscale.cli import main
from ftscale.data.user import make_source, resolve_task, task_ref
from ftscale.errors import UserError

N = 40
QA = [(f"What is {i} plus {i + 1}?", str(2 * i + 1)) for i in range(N)]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def alpaca_rows():
    return [{"instruction": q, "input": "", "output": a} for q, a in QA]


def chat_rows():
    return [
        {
            "messages": [
                {"role": "system", "content": "You add."},
                {"role": "user", "content": q},
                {"role": "assistant", "content": a},
            ]
        }
        for q, a in QA
    ]


def sharegpt_rows():
    return [
        {
            "conversations": [
                {"from": "human", "value": q},
                {"from": "gpt", "value": a},
                {"from": "human", "value": "Twice that?"},
                {"from": "gpt", "value": str(2 * int(a))},
            ]
        }
        for q, a in QA
    ]


def pc_rows():
    return [{"prompt": q + " Answer:", "completion": " " + a} for q, a in QA]


@pytest.fixture
def files(tmp_path):
    out = {}
    (tmp_path / "alpaca.json").write_text(json.dumps(alpaca_rows(), indent=2), encoding="utf-8")
    out["alpaca.json"] = tmp_path / "alpaca.json"
    out["alpaca.jsonl"] = _write_jsonl(tmp_path / "alpaca.jsonl", alpaca_rows())
    out["chat.jsonl"] = _write_jsonl(tmp_path / "chat.jsonl", chat_rows())
    out["sg.jsonl"] = _write_jsonl(tmp_path / "sg.jsonl", sharegpt_rows())
    out["pc.jsonl"] = _write_jsonl(tmp_path / "pc.jsonl", pc_rows())
    out["text.jsonl"] = _write_jsonl(tmp_path / "text.jsonl", [{"text": q} for q, _ in QA])
    st = [{"source": q, "target": a} for q, a in QA]
    csv = tmp_path / "st.csv"
    csv.write_text("source,target\n" + "".join(f'"{r["source"]}",{r["target"]}\n' for r in st))
    out["st.csv"] = csv
    return out


@pytest.mark.parametrize(
    "name,fmt,kind",
    [
        ("alpaca.json", "alpaca", "generate"),
        ("alpaca.jsonl", "alpaca", "generate"),
        ("chat.jsonl", "chat", "generate"),
        ("sg.jsonl", "sharegpt", "generate"),
        ("pc.jsonl", "prompt_completion", "generate"),
        ("text.jsonl", "text", "text"),
        ("st.csv", "source_target", "generate"),
    ],
)
def test_each_format_is_detected_and_split(files, name, fmt, kind):
    task = resolve_task(str(files[name]))
    assert task.format == fmt and task.kind == kind
    assert task.name == name.split(".")[0]
    assert sum(task.counts().values()) == N and task.counts()["dev"] == task.counts()["test"] == 4
    ex = task.split("train")[0]
    prompt = task.prompt(ex)
    assert "Translate" not in prompt and "Summarize" not in prompt  # no task wording
    assert ex.origin.startswith(str(files[name]) + ":")


def test_the_prompts_of_each_format(files):
    alpaca = resolve_task(str(files["alpaca.jsonl"]))
    ex = alpaca.split("test")[0]
    assert alpaca.prompt(ex) == f"User: {ex.source}\nAssistant: "
    assert alpaca.segments(ex) == [(f"User: {ex.source}\nAssistant: ", False, False),
                                   (ex.target, True, True)]  # fmt: skip
    chat = resolve_task(str(files["chat.jsonl"]))
    assert chat.prompt(chat.split("test")[0]).startswith("You add.\n\nUser: ")
    sg = resolve_task(str(files["sg.jsonl"]))
    segs = sg.segments(sg.split("test")[0])
    assert [s[1] for s in segs] == [False, True, False, True]  # every assistant turn trained
    assert segs[2][0] == "\nUser: Twice that?\nAssistant: "
    pc = resolve_task(str(files["pc.jsonl"]))
    ex = pc.split("test")[0]
    assert pc.segments(ex) == [(ex.source, False, False), (ex.target, True, True)]
    assert resolve_task(str(files["text.jsonl"])).segments(ex) == [(ex.target, True, True)]
    assert alpaca.metric == ("rougeL", "exact_match") and pc.metric == ("exact_match", "chrf")


def test_field_mapping_custom_template_and_split_files(tmp_path):
    rows = [{"q": q, "a": a, "topic": "sums"} for q, a in QA]
    _write_jsonl(tmp_path / "train.jsonl", rows[:30])
    _write_jsonl(tmp_path / "dev.jsonl", rows[30:35])
    _write_jsonl(tmp_path / "test.jsonl", rows[35:])
    src = make_source(
        {
            "path": "train.jsonl",
            "format": "alpaca",
            "fields": {"instruction": "q", "output": "a"},
            "template": "Q ({topic}): {prompt}\nA:",
            "dev": "dev.jsonl",
            "test": "test.jsonl",
            "metric": "exact_match",
        },
        name="sums",
        base=tmp_path,
    )
    task = resolve_task(src)
    assert task.name == "sums" and task.counts() == {"train": 30, "dev": 5, "test": 5}
    ex = task.split("test")[0]
    assert task.prompt(ex) == f"Q (sums): {ex.source}\nA:"
    assert task.metric == ("exact_match",)


def test_a_moved_file_keeps_its_identity_a_changed_one_does_not(tmp_path, files):
    from ftscale.finetune.runkey import data_fingerprint

    a = resolve_task(str(files["pc.jsonl"]))
    moved = tmp_path / "elsewhere" / "pc.jsonl"
    moved.parent.mkdir()
    moved.write_bytes(files["pc.jsonl"].read_bytes())
    b = resolve_task(str(moved))
    assert data_fingerprint(a) == data_fingerprint(b)
    _write_jsonl(moved, [*pc_rows()[:-1], {"prompt": "1+1?", "completion": " 2"}])
    assert data_fingerprint(resolve_task(str(moved))) != data_fingerprint(a)


def test_task_ref_names_and_unknown_tasks(files):
    assert task_ref("translate-en-de") == ("translate-en-de", None)
    name, src = task_ref(str(files["pc.jsonl"]), {"metric": ["chrf"]})
    assert name == "pc" and src["metric"] == ["chrf"] and src["path"].endswith("pc.jsonl")
    with pytest.raises(UserError, match="unknown task 'no-such'"):
        resolve_task("no-such")
    with pytest.raises(UserError, match="unknown data format 'yaml'"):
        make_source({"path": "x.jsonl", "format": "yaml"})
    with pytest.raises(UserError, match="unknown field role 'question'"):
        make_source({"path": "x.jsonl", "format": "alpaca", "fields": {"question": "q"}})
    with pytest.raises(UserError, match="must contain \\{prompt\\}"):
        make_source({"path": "x.jsonl", "template": "no placeholder"})


BAD = [
    # (file name, content, expected message after "FILE:LINE: ")
    ("malformed.jsonl", '{"prompt": "a", "completion": "b"}\n{"prompt": "a", \n', 2,
     "malformed JSON"),
    ("missing.jsonl", '{"instruction": "a", "output": "b"}\n{"instruction": "a"}\n', 2,
     "has none of alpaca's fields"),
    ("empty.jsonl", '{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": " "}\n',
     2, "empty response"),
    ("mixed.jsonl", '{"prompt": "a", "completion": "b"}\n{"instruction": "a", "output": "b"}\n',
     2, "has the shape of alpaca"),
    ("noasst.jsonl", '{"messages": [{"role": "user", "content": "hi"}]}\n', 1,
     "no assistant turn"),
    ("badrole.jsonl", '{"messages": [{"role": "wizard", "content": "hi"}]}\n', 1,
     "unknown role 'wizard'"),
    ("unknown.jsonl", '{"q": "a", "a": "b"}\n', 1, "cannot tell the data format"),
    ("array.json", '[\n  {"prompt": "a", "completion": "b"},\n  {"prompt": "a" "completion"}\n]',
     3, "malformed JSON"),
]  # fmt: skip


@pytest.mark.parametrize("name,content,line,message", BAD)
def test_bad_files_name_file_and_line(tmp_path, name, content, line, message, capsys):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    rc = main(["data", "show", str(path)])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.startswith(f"ftscale: error: {path}:{line}: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_non_utf8_names_its_line(tmp_path, capsys):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        b'{"prompt": "a", "completion": "b"}\n{"prompt": "caf\xe9", "completion": "b"}\n'
    )
    rc = main(["data", "show", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"ftscale: error: {path}:2: not UTF-8")


def test_data_size_larger_than_the_file(files, capsys):
    task = resolve_task(str(files["pc.jsonl"]))
    with pytest.raises(UserError, match=r"pc\.jsonl: task pc: data size 500 is larger"):
        task.subset(500, 0)


def test_data_show_and_export_json(files, capsys):
    rc = main(["data", "show", str(files["sg.jsonl"]), "-n", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["format"] == "sharegpt" and doc["template"] == "plain"
    row = doc["examples"][0]
    assert row["response"] == row["target"] and len(row["messages"]) == 4
    rc = main(["data", "export", str(files["chat.jsonl"]), "--split", "test"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(lines) == 4 and json.loads(lines[0])["messages"][0]["role"] == "system"


def test_question_answer_pairs_and_tool_turns(tmp_path):
    qa = _write_jsonl(tmp_path / "qa.jsonl", [{"question": q, "answer": a} for q, a in QA])
    task = resolve_task(str(qa))
    ex = task.split("test")[0]
    assert task.format == "source_target" and task.prompt(ex) == ex.source + "\n"
    dev = _write_jsonl(tmp_path / "qa_dev.jsonl", [{"question": "1+1?", "answer": "2"}] * 3)
    split = resolve_task({"path": str(qa), "dev": str(dev)})
    assert split.counts()["dev"] == 3 and split.split("dev")[0].target == "2"
    rows = [
        {
            "conversations": [
                {"from": "Human", "value": "weather?"},
                {"from": "function_call", "value": '{"name": "weather"}'},
                {"from": "observation", "value": "sunny"},
                {"from": "gpt", "value": f"It is sunny ({i})."},
            ]
        }
        for i in range(20)
    ]
    tools = resolve_task(str(_write_jsonl(tmp_path / "tools.jsonl", rows)))
    segs = tools.segments(tools.split("train")[0])
    assert [s[1] for s in segs] == [False, True, False, True]
    assert "Tool: sunny" in segs[2][0]


def test_a_llama_factory_dataset_info_entry(tmp_path, capsys):
    rows = [
        {"conv": [{"who": "HUMAN_X", "text": q}, {"who": "BOT_Y", "text": a}], "sys": "Add."}
        for q, a in QA
    ]
    _write_jsonl(tmp_path / "sums.jsonl", rows)
    alpaca = [{"q": q, "a": a} for q, a in QA]
    (tmp_path / "al.json").write_text(json.dumps(alpaca), encoding="utf-8")
    info = {
        "sums": {
            "file_name": "sums.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "conv", "system": "sys"},
            "tags": {"role_tag": "who", "content_tag": "text", "user_tag": "HUMAN_X",
                     "assistant_tag": "BOT_Y"},
        },
        "al": {"file_name": "al.json", "columns": {"prompt": "q", "response": "a"}},
    }  # fmt: skip
    (tmp_path / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    task = resolve_task({"path": str(tmp_path / "dataset_info.json"), "dataset": "sums"})
    ex = task.split("train")[0]
    assert task.name == "sums" and task.format == "sharegpt"
    assert ex.messages[0] == ("system", "Add.") and ex.messages[-1][0] == "assistant"
    rc = main(["data", "show", str(tmp_path / "dataset_info.json"), "--dataset", "al", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["task"] == "al" and doc["format"] == "alpaca"
    with pytest.raises(UserError, match="several datasets"):
        make_source({"path": str(tmp_path / "dataset_info.json")})
    with pytest.raises(UserError, match="no dataset 'nope'"):
        make_source({"path": str(tmp_path / "dataset_info.json"), "dataset": "nope"})
