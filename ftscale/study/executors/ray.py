"""Ray back end: each run is a Ray task with its CPU/GPU/custom-resource request; the driver
alone writes the store. ``address=None`` starts a local Ray instance; ``address="auto"`` (the
cluster that ``ray start`` set up on this machine), ``"host:port"`` or ``"ray://host:port"`` (Ray
Client, needs ``ray[client]``) joins a cluster. Every node must have the same ftscale installed (the
runs import it there; the model family and corpora ship inside the package). Ray is an optional
extra (``pip install 'ftscale[ray]'``).

- **Resources**: ``cpus_per_run`` and ``gpus_per_run`` may be fractions (``gpus_per_run=0.25``
  packs four runs onto one GPU); ``resources`` (``{"a100": 1}``) places runs on the nodes that
  declare them (``ray start --resources``).
- **Lost nodes**: tasks run with ``max_retries=0``; a run whose node (or worker process) died is
  handed back as :data:`~ftscale.study.executors.base.LOST`, and the runner returns it to the
  queue, where a live node takes it. Ray does not re-run it behind the store's back.
- **User files** (a task's data file, a local checkpoint folder: absolute paths in the run spec
  that exist on the driver) reach workers that do not share the driver's filesystem through
  Ray's object store: ``ship_files="auto"`` (default) uses the path on a worker that sees it and
  the shipped copy (cached per node, keyed by content) on one that does not; ``"always"`` uses
  the copy everywhere; ``"never"`` ships nothing, and a worker that cannot see a path fails the
  run with an error naming the path and the node.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

from ftscale.errors import UserError
from ftscale.study.executors.base import LOST, Executor, Outcome, execute

SHIP_MODES = ("auto", "always", "never")


def local_paths(value: Any) -> list[str]:
    """Absolute paths of existing files or folders among the strings in ``value`` (a run spec,
    searched through its dicts and lists), in first-seen order."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)
        elif isinstance(v, str) and os.path.isabs(v) and v not in found and os.path.exists(v):
            found.append(v)

    walk(value)
    return found


def _pack(path: str) -> bytes:
    """A file's bytes, or a folder as an uncompressed tar."""
    if os.path.isfile(path):
        return Path(path).read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(path, arcname=".")
    return buf.getvalue()


def _node() -> str:
    """This worker's host and Ray node (``host/node 1a2b3c4d``)."""
    import socket

    try:
        import ray

        node = ray.get_runtime_context().get_node_id()[:8]
    except Exception:  # not inside Ray
        node = "?"
    return f"{socket.gethostname()}/node {node}"


def _materialize(path: str, ref: Any, digest: str, is_dir: bool) -> str:
    """The shipped copy of ``path`` on this node (written once per node, atomically)."""
    import tempfile

    import ray

    root = Path(tempfile.gettempdir()) / "ftscale-ray-files" / digest
    target = root / (Path(path).name or "data")
    if target.exists():
        return str(target)
    data = ray.get(ref)
    tmp = root.with_name(f"{digest}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    if is_dir:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp / target.name, filter="data")
    else:
        (tmp / target.name).write_bytes(data)
    try:
        tmp.rename(root)
    except OSError:  # another task on this node wrote it first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def _replace(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, mapping) for v in value]
    return mapping.get(value, value) if isinstance(value, str) else value


def _ray_execute(spec: dict[str, Any], threads: int, files: dict[str, tuple], ship: str) -> Outcome:
    os.environ["FTSCALE_THREADS"] = str(threads)
    host = _node()
    mapping: dict[str, str] = {}
    for path, (ref, digest, is_dir) in files.items():
        if ship != "always" and os.path.exists(path):
            continue  # this worker sees the driver's path (a shared filesystem, this machine)
        if ref is None:  # ship="never"
            return Outcome(
                "failed",
                None,
                f"FileNotFoundError: the worker on {host} cannot see {path} (a path on the "
                "driver): put it on a filesystem every node mounts, or let ftscale ship it "
                "(--ship-files auto)",
                host,
            )
        mapping[path] = _materialize(path, ref, digest, is_dir)
    outcome = execute(_replace(spec, mapping) if mapping else spec)
    if mapping and outcome.record is not None:  # the record names the user's paths
        outcome.record = _replace(outcome.record, {v: k for k, v in mapping.items()})
    outcome.host = host
    return outcome


class RayExecutor(Executor):
    """Submit runs as Ray tasks.

    Args:
        workers: runs in flight at once (default: as many as the cluster's resources hold at
            once, by ``cpus_per_run``, ``gpus_per_run`` and ``resources``).
        address: Ray address; None starts a local instance.
        cpus_per_run, gpus_per_run: each task's CPU and GPU request (fractions allowed).
        resources: custom resources each task asks for (``{"a100": 1}``).
        ship_files: ``auto``, ``always`` or ``never`` (see the module's docstring).
        threads: intra-op threads per run.
    """

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        cpus_per_run: float = 1.0,
        gpus_per_run: float = 0.0,
        resources: dict[str, float] | None = None,
        ship_files: str = "auto",
        threads: int = 1,
        **_: Any,
    ):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("the ray backend needs Ray: pip install 'ftscale[ray]'") from None
        if ship_files not in SHIP_MODES:
            raise UserError(f"ship_files: expected one of {', '.join(SHIP_MODES)}")
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.resources = dict(resources or {})
        self.ship_files = ship_files
        self.threads = threads
        self._workers = workers
        self.capacity = workers or 1
        self._refs: dict[Any, str] = {}
        self._shipped: dict[tuple, tuple] = {}  # (path, mtime, size) -> (ref, digest, is_dir)
        self._remote = None
        self._started_ray = False

    def start(self) -> None:
        import ray

        if not ray.is_initialized():
            # The workers must import ftscale the way the driver does.
            env = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("FTSCALE_")}}
            kwargs: dict[str, Any] = {"runtime_env": env, "log_to_driver": False}
            if self.address is None:
                kwargs.update(include_dashboard=False, num_cpus=os.cpu_count())
            else:
                _check_reachable(self.address)
                kwargs["address"] = self.address
                # Ray's C++ client logs every failed connection attempt; the error below says
                # what matters in one line.
                os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
                kwargs["logging_level"] = "ERROR"
            try:
                ray.init(**kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                # ValueError: e.g. a ray:// address without ray[client]; RuntimeError: a
                # cluster of another Ray version. Both are the user's setup, not a bug.
                msg = " ".join(str(exc).split())
                _reset_ray()
                raise UserError(f"cannot reach the Ray cluster at {self.address}: {msg}") from None
            self._started_ray = True
        if self._workers is None:
            self.capacity = self._fits(ray.cluster_resources())
        self._remote = ray.remote(
            num_cpus=self.cpus_per_run,
            num_gpus=self.gpus_per_run,
            resources=self.resources or None,
            max_retries=0,  # a lost run goes back to the store's queue, not to Ray's
        )(_ray_execute)

    def _fits(self, total: dict[str, float]) -> int:
        """How many runs the cluster's resources hold at once (at least 1)."""
        asks = {"CPU": self.cpus_per_run, "GPU": self.gpus_per_run, **self.resources}
        n = None
        for name, ask in asks.items():
            if ask > 0:
                k = int(total.get(name, 0.0) / ask + 1e-9)
                n = k if n is None else min(n, k)
        return max(1, n or 1)

    def _files(self, spec: dict[str, Any]) -> dict[str, tuple]:
        import ray

        out = {}
        for path in local_paths(spec):
            if self.ship_files == "never":
                out[path] = (None, "", os.path.isdir(path))
                continue
            st = os.stat(path)
            key = (path, st.st_mtime_ns, st.st_size)
            if key not in self._shipped:
                data = _pack(path)
                digest = hashlib.sha256(data).hexdigest()[:32]
                self._shipped[key] = (ray.put(data), digest, os.path.isdir(path))
            out[path] = self._shipped[key]
        return out

    def submit(self, run_key: str, spec: dict[str, Any]) -> None:
        files = self._files(spec)
        self._refs[self._remote.remote(spec, self.threads, files, self.ship_files)] = run_key

    def wait(self, timeout: float | None = None) -> list[tuple[str, Outcome]]:
        import ray
        from ray.exceptions import RayTaskError

        if not self._refs:
            return []
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            key = self._refs.pop(ref)
            try:
                out.append((key, ray.get(ref)))
            except RayTaskError as exc:  # the task raised outside the run (never for a run)
                out.append((key, Outcome("failed", None, f"ray task failed: {exc}")))
            except Exception as exc:  # the worker or its node died: the run goes back
                reason = " ".join(str(exc).split())[:300]
                out.append((key, Outcome(LOST, None, f"{type(exc).__name__}: {reason}")))
        return out

    def shutdown(self) -> None:
        import ray

        for ref in list(self._refs):
            ray.cancel(ref, force=True)
        self._refs.clear()
        self._shipped.clear()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def _reset_ray() -> None:
    """Undo what a failed ``ray.init`` left behind: a failed ``ray://`` connection leaves Ray's
    client mode switched on in this process, and every later ``ray.init`` (another study in the
    same process) then fails."""
    import contextlib

    import ray

    with contextlib.suppress(Exception):
        from ray._private.client_mode_hook import _explicitly_disable_client_mode

        _explicitly_disable_client_mode()
    with contextlib.suppress(Exception):
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """For a ``host:port`` address, a TCP connection first: an unreachable cluster is then a
    one-line error within seconds, not after a minute of Ray's retries and log lines. ``auto``
    and ``ray://`` addresses are left to Ray."""
    import socket

    if address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        port_no = int(port)
    except ValueError:
        raise UserError(f"Ray address {address!r}: the port must be a number") from None
    try:
        with socket.create_connection((host.strip("[]"), port_no), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"cannot reach the Ray cluster at {address}: {reason}") from None
