"""``report_to``: a real (toy) finetuning run logs its per-step training loss, its dev losses,
its config and its record to TensorBoard event files and a local MLflow store, read back here
with TensorBoard's own event reader and MLflow's client."""

from __future__ import annotations

import json

import pytest

from ftscale.errors import UserError
from ftscale.finetune import run_finetune
from ftscale.finetune.config import FinetuneConfig, validate
from ftscale.finetune.runkey import run_key


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    [run] = list((folder / "tensorboard").iterdir())
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _text(acc, tag: str) -> str:
    [ev] = acc.Tensors(f"{tag}/text_summary")  # torch's SummaryWriter.add_text
    return ev.tensor_proto.string_val[0].decode()


@pytest.mark.slow
def test_tensorboard_and_mlflow_read_back_the_run(toy, quick, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    task, tok, model = toy
    cfg = quick(method="lora", steps=12, eval_every=4, patience=0, decode_examples=0)
    rec = run_finetune(
        {**cfg, "report_to": ["tensorboard", "mlflow"], "report_dir": str(tmp_path)},
        model=model,
        tokenizer=tok,
        task=task,
    )
    assert rec["status"] == "done"

    acc = _events(tmp_path)
    train = acc.Scalars("train/loss")
    assert [e.step for e in train] == list(range(1, 13))  # every step, none twice
    dev = {e.step: e.value for e in acc.Scalars("dev/loss")}
    assert sorted(dev) == [4, 8, 12]
    # the dev loss the run kept is the one logged at its best step (float32 in the event file)
    assert dev[rec["best_step"]] == pytest.approx(rec["dev_loss"], rel=1e-6)
    [test] = acc.Scalars("test/loss")
    assert test.value == pytest.approx(rec["loss"], rel=1e-6)
    assert json.loads(_text(acc, "config").strip("`json\n"))["lr"] == 1e-2
    assert json.loads(_text(acc, "record").strip("`json\n"))["run_key"] == rec["run_key"]

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("ftscale")
    [run] = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["method"] == "lora" and run.data.params["steps"] == "12"
    hist = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in hist] == list(range(1, 13))
    assert [m.value for m in hist] == pytest.approx([e.value for e in train], rel=1e-6)
    devs = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "dev/loss")}
    assert devs[rec["best_step"]] == rec["dev_loss"]
    assert run.data.metrics["test/loss"] == rec["loss"]
    path = client.download_artifacts(run.info.run_id, "record.json", str(tmp_path / "dl"))
    with open(path) as fh:
        assert json.load(fh)["loss"] == rec["loss"]


@pytest.mark.slow
def test_each_candidate_rate_is_its_own_series(toy, quick, tmp_path):
    task, tok, model = toy
    cfg = quick(method="lora", steps=8, eval_every=4, decode_examples=0, lr=[3e-3, 1e-2])
    run_finetune(
        {**cfg, "report_to": ["tensorboard"], "report_dir": str(tmp_path), "lr_search": "grid"},
        model=model,
        tokenizer=tok,
        task=task,
    )
    tags = set(_events(tmp_path).Tags()["scalars"])
    assert {"lr_0.003/train/loss", "lr_0.01/train/loss", "lr_0.003/dev/loss"} <= tags


def test_report_to_is_checked_and_leaves_the_run_key_alone():
    base = FinetuneConfig(model="ftlm-1", task="translate-en-de", method="lora")
    tracked = FinetuneConfig(
        model="ftlm-1", task="translate-en-de", method="lora", report_to=["mlflow"], report_dir="x"
    )
    validate(tracked)
    assert run_key(base, data_hash="d", model_id="m") == run_key(
        tracked, data_hash="d", model_id="m"
    )
    with pytest.raises(UserError, match="unknown tracker 'wandb'"):
        validate(FinetuneConfig(model="m", task="t", method="lora", report_to=["wandb"]))
    with pytest.raises(UserError, match="list of tracker names"):
        validate(FinetuneConfig(model="m", task="t", method="lora", report_to="tensorboard"))


def test_study_training_takes_report_to():
    from ftscale.study.runfn import spec_to_config
    from ftscale.study.spec import parse_study
    from ftscale.testing.simulated import simulated_study

    d = simulated_study()
    d["training"]["report_to"] = ["tensorboard", "mlflow"]
    study = parse_study(d)
    spec = {"task": "t", "method": "lora", "model": "m", "data_size": 10, "seed": 0}
    config = spec_to_config({**spec, "training": study.training_for("lora")})
    assert config.report_to == ["tensorboard", "mlflow"]
    d["training"]["report_to"] = ["nope"]
    with pytest.raises(UserError, match="nope"):
        parse_study(d)


WORKER = """
import sys
from pathlib import Path
from ftscale.finetune.trackers import _MLflow
m = _MLflow(Path(sys.argv[1]), "w" + sys.argv[2], {"task": "t", "method": "lora", "model": "m",
            "data_size": 1, "seed": int(sys.argv[2])})
m.scalars("train/loss", [(i + 1, 1.0 / (i + 1)) for i in range(20)])
m.finish({"loss": 1.0, "status": "done"}, 20)
"""


@pytest.mark.slow
def test_workers_starting_together_share_one_mlflow_store(tmp_path):
    """A study's workers start at once: the first creates the SQLite store, none fails."""
    import os
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(i)], env=env)
        for i in range(3)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ftscale").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["w0", "w1", "w2"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    for r in runs:
        assert len(client.get_metric_history(r.info.run_id, "train/loss")) == 20
