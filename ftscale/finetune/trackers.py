"""Runs logged to the experiment trackers users already have, offline: ``report_to =
["tensorboard", "mlflow"]`` (as Hugging Face's Trainer spells it) in a study's ``[training]`` or
``ftscale finetune --report-to tensorboard mlflow``.

Each run logs its training loss at every step and its dev loss at every dev evaluation
(nats/token; one series per candidate learning rate when several are searched, ``lr_<rate>/``
before the name), its configuration, and at the end its record (test loss as ``test/loss``,
the whole record as a JSON text or artifact). Where:

- TensorBoard: event files under ``<report_dir>/tensorboard/<run name>`` (``tensorboard
  --logdir <report_dir>/tensorboard``), written by torch's ``SummaryWriter``.
- MLflow: the tracking store ``MLFLOW_TRACKING_URI`` names, else a local SQLite store
  ``<report_dir>/mlflow.db`` with artifacts under ``<report_dir>/mlartifacts`` (``mlflow ui
  --backend-store-uri sqlite:///<report_dir>/mlflow.db``), experiment ``ftscale``.

The training losses stay on the device between dev evaluations (one transfer per evaluation,
no per-step synchronisation). A tracker that fails (a locked store, a full disk) is reported
once on stderr and switched off: the run itself never fails for its logging.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftscale.errors import UserError

#: Where logs go when ``report_dir`` is not set (relative to the working folder).
DEFAULT_DIR = "runs/trackers"
EXPERIMENT = "ftscale"


def run_name(config: Any) -> str:
    """``task_method_model[_pet]_D<data size>_s<seed>``, safe as a folder name."""
    from ftscale.finetune.methods import METHODS

    field = METHODS[config.method].pet_size_field
    pet = getattr(config, field) if field else None
    model = Path(str(config.model)).name
    parts = [config.task, config.method, model, *([f"{field}{pet}"] if pet else [])]
    name = "_".join([*parts, f"D{config.data_size}", f"s{config.seed}"])
    return re.sub(r"[^\w.+-]", "-", name)


def _flat(d: dict[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v) if isinstance(v, list | dict) else str(v) for k, v in d.items()}


class _TensorBoard:
    def __init__(self, root: Path, name: str, config: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter

        self.dir = root / "tensorboard" / f"{name}_{time.strftime('%Y%m%d-%H%M%S')}"
        self.writer = SummaryWriter(log_dir=str(self.dir))
        self.writer.add_text("config", "```json\n" + json.dumps(config, indent=1) + "\n```")

    def scalars(self, tag: str, values: list[tuple[int, float]]) -> None:
        for step, v in values:
            self.writer.add_scalar(tag, v, step)

    def finish(self, record: dict[str, Any], step: int) -> None:
        for key in ("loss", "dev_loss"):
            if isinstance(record.get(key), float) and math.isfinite(record[key]):
                self.writer.add_scalar(
                    "test/loss" if key == "loss" else "best/dev_loss", record[key], step
                )
        text = json.dumps(record, indent=1, default=str)
        self.writer.add_text("record", "```json\n" + text + "\n```", step)
        self.writer.close()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` between processes (POSIX ``flock``)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _MLflow:
    def __init__(self, root: Path, name: str, config: dict[str, Any]):
        import os

        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        art = None
        if not uri:
            uri = f"sqlite:///{(root / 'mlflow.db').resolve()}"
            art = (root / "mlartifacts").resolve().as_uri()
        # The workers of a study start together: the first to open a new SQLite store creates
        # its tables (MLflow's migrations race otherwise), then each finds the experiment.
        with _locked(root / ".mlflow.lock"):
            self.client = MlflowClient(tracking_uri=uri)
            exp = self.client.get_experiment_by_name(EXPERIMENT)
            if exp is None:
                exp_id = self.client.create_experiment(EXPERIMENT, artifact_location=art)
            else:
                exp_id = exp.experiment_id
        tags = {k: str(config.get(k)) for k in ("task", "method", "model", "data_size", "seed")}
        self.run_id = self.client.create_run(exp_id, run_name=name, tags=tags).info.run_id
        params = [Param(k, v[:6000]) for k, v in _flat(config).items()]
        self.client.log_batch(self.run_id, params=params)
        self.client.log_dict(self.run_id, config, "config.json")

    def scalars(self, tag: str, values: list[tuple[int, float]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(tag, v, now, step) for step, v in values]
        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 per batch
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def finish(self, record: dict[str, Any], step: int) -> None:
        for key, tag in (("loss", "test/loss"), ("dev_loss", "best/dev_loss")):
            if isinstance(record.get(key), float) and math.isfinite(record[key]):
                self.scalars(tag, [(step, record[key])])
        self.client.log_dict(
            self.run_id, json.loads(json.dumps(record, default=str)), "record.json"
        )
        status = "FINISHED" if record.get("status") == "done" else "FAILED"
        self.client.set_tag(self.run_id, "status", str(record.get("status")))
        self.client.set_terminated(self.run_id, status)


class RunTrackers:
    """The trackers of one run. :meth:`dev` is the training loop's hook at each dev evaluation
    (``Loop.on_dev``); :meth:`finish` logs the record and closes them."""

    def __init__(self, config: Any):
        from ftscale.finetune.rates import lr_candidates

        self.several = len(lr_candidates(config)) > 1
        self.logged: dict[int, int] = {}  # id(trial) -> train steps logged
        root = Path(config.report_dir or DEFAULT_DIR)
        name = run_name(config)
        conf = config.to_dict()
        self.trackers: dict[str, Any] = {}
        makers = {"tensorboard": _TensorBoard, "mlflow": _MLflow}
        for t in dict.fromkeys(config.report_to):
            try:
                self.trackers[t] = makers[t](root, name, conf)
            except ImportError as exc:
                raise UserError(
                    f"report_to {t}: {exc.name or exc} is not installed "
                    "(pip install 'ftscale[trackers]')"
                ) from None
            except Exception as exc:  # noqa: BLE001 - logging must not fail the run
                self._warn(t, exc)

    def _warn(self, name: str, exc: BaseException) -> None:
        print(
            f"ftscale: warning: {name} logging switched off: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        self.trackers.pop(name, None)

    def _each(self, call: str, *args: Any) -> None:
        for name, t in list(self.trackers.items()):
            try:
                getattr(t, call)(*args)
            except Exception as exc:  # noqa: BLE001
                self._warn(name, exc)

    def _prefix(self, trial: Any) -> str:
        return f"lr_{trial.lr:g}/" if self.several else ""

    def _train(self, trial: Any, upto: int) -> None:
        start = self.logged.get(id(trial), 0)
        if upto <= start:
            return
        losses = [float(v) for v in trial.losses[start:upto].tolist()]
        values = [(start + i + 1, v) for i, v in enumerate(losses) if math.isfinite(v)]
        self.logged[id(trial)] = upto
        if values:
            self._each("scalars", self._prefix(trial) + "train/loss", values)

    def dev(self, trial: Any, step: int, dev_loss: float) -> None:
        """Log ``trial``'s training losses up to ``step`` and its dev loss there."""
        self._train(trial, step)
        if math.isfinite(dev_loss):
            self._each("scalars", self._prefix(trial) + "dev/loss", [(step, float(dev_loss))])

    def finish(self, record: dict[str, Any], trials: list[Any]) -> None:
        """Log what the trials trained after their last dev evaluation, and the record."""
        for t in trials:
            self._train(t, t.step)
        self._each("finish", record, max((t.step for t in trials), default=0))
        self.trackers.clear()


def open_trackers(config: Any) -> RunTrackers | None:
    """The run's trackers, None when ``config.report_to`` names none."""
    return RunTrackers(config) if config.report_to else None
