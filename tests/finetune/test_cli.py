import copy
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from ftscale.cli import main
from ftscale.finetune import engine as E
from ftscale.finetune import resources as R


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "ftscale", "finetune", *args], capture_output=True, text=True
    )


BASE = ["--model", "toy", "--task", "toy-xx-de", "--data-size", "16"]


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--method", "dora"], "unknown method 'dora'"),
        (["--method", "lora", "--rank", "0"], "rank must be a positive integer"),
        (["--method", "prompt", "--prompt-length", "-1"], "prompt length must be a positive"),
        (["--method", "fmt", "--lr", "5"], "learning rate must lie in"),
        (["--method", "fmt", "--lr", "0"], "learning rate must lie in"),
        (["--method", "fmt", "--lr", "1e-3,9"], "learning rate must lie in"),
        (["--method", "fmt", "--lr", "fast"], "--lr must be a rate"),
        (["--method", "fmt", "--decay", "2"], "decay fraction"),
        (["--method", "lora", "--steps", "0"], "steps must be positive"),
        (["--method", "lora", "--device", "tpu"], "unknown device"),
        (["--method", "lora", "--forget-examples", "-1"], "forget examples must not be negative"),
        (["--method", "lora", "--forget-text", "/no/such/file.txt"], "forget text"),
    ],
)
def test_bad_arguments_are_one_line_exit_2_no_record(args, msg):
    proc = _cli(*BASE, *args)
    assert proc.returncode == 2
    assert proc.stdout == ""  # nothing recorded
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0]


def test_unknown_task_is_one_line_exit_2():
    proc = _cli("--model", "toy", "--task", "no-such-task", "--method", "fmt", "--data-size", "4")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_unknown_model_is_one_line_exit_2(toy, monkeypatch, capsys):
    monkeypatch.setattr(E, "_load_task", lambda name: toy[0])
    rc = main(["finetune", "--model", "no-such-model-xyz", "--task", "t", "--method", "fmt",
               "--data-size", "4"])  # fmt: skip
    err = capsys.readouterr()
    assert rc == 2 and err.out == "" and len(err.err.strip().splitlines()) == 1


@pytest.fixture
def patched(toy, monkeypatch):
    task, tok, model = toy
    monkeypatch.setattr(E, "_load_task", lambda name: task)
    monkeypatch.setattr(E, "_load_model", lambda name: (copy.deepcopy(model), tok, None))
    size = sum(p.numel() for p in model.parameters())
    monkeypatch.setattr(E, "_model_info", lambda name: SimpleNamespace(model_size=size))
    return toy


def test_data_size_larger_than_the_split(patched, capsys):
    rc = main(["finetune", *BASE[:4], "--data-size", "5000", "--method", "lora"])
    err = capsys.readouterr()
    assert rc == 2 and err.out == ""
    assert "exceeds the 300 training examples" in err.err and len(err.err.splitlines()) == 1


def test_model_that_does_not_fit_memory(patched, capsys, monkeypatch):
    def no_load(name):
        raise AssertionError("the weights must not be loaded")

    monkeypatch.setattr(R, "available_memory", lambda device: 10_000)
    monkeypatch.setattr(E, "_load_model", no_load)
    rc = main(["finetune", *BASE, "--method", "fmt", "--steps", "2"])
    err = capsys.readouterr()
    assert rc == 2 and err.out == "" and "GiB available" in err.err


def test_json_record_from_the_cli(patched, capsys):
    rc = main(["finetune", *BASE, "--method", "prompt", "--prompt-length", "4", "--steps", "3",
               "--eval-every", "3", "--batch-size", "8", "--json"])  # fmt: skip
    out = capsys.readouterr().out
    rec = json.loads(out)  # exactly one JSON object
    assert rc == 0 and rec["status"] == "done" and rec["method"] == "prompt"
    assert rec["pet_size"] == 4 and rec["trainable_params"] == rec["pet_params"] == 4 * 32
    assert rec["tokens_per_second"] > 0 and rec["steps"] == 3
    for k in ("loss", "dev_loss", "zero_shot_loss", "bleu", "chrf", "flops", "peak_mem_bytes"):
        assert rec[k] is not None, k


def test_plain_output(patched, capsys):
    rc = main(["finetune", *BASE, "--method", "lora", "--steps", "2", "--eval-every", "2"])
    out = capsys.readouterr().out
    assert rc == 0 and "tokens_per_second" in out and "loss" in out


def test_lr_auto_and_wsd_from_the_cli(patched, capsys):
    rc = main(["finetune", *BASE, "--method", "lora", "--steps", "6", "--eval-every", "2",
               "--lr", "auto", "--schedule", "wsd", "--json"])  # fmt: skip
    rec = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(rec["lr_candidates"]) == 3 and rec["lr"] in rec["lr_candidates"]
    assert rec["config"]["schedule"] == "wsd" and len(rec["lr_trials"]) == 3
    rc = main(["finetune", *BASE, "--method", "lora", "--steps", "4", "--eval-every", "2",
               "--lr", "1e-3,1e-2", "--lr-search", "grid"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and out.count("lr candidate") == 2
