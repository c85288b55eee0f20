"""Ray back end: each run is a Ray task with its CPU/GPU request; the driver alone writes the
store. ``address=None`` starts a local Ray instance; ``address="auto"`` (the cluster that
``ray start`` set up on this machine), ``"host:port"`` or ``"ray://host:port"`` (Ray Client,
needs ``ray[client]``) joins a cluster. Every node must have the same ftscale installed (the
runs import it there; the model family and corpora ship inside the package). Ray is an optional
extra (``pip install 'ftscale[ray]'``)."""

from __future__ import annotations

from typing import Any

from ftscale.errors import UserError
from ftscale.study.executors.base import Executor, Outcome, execute


def _ray_execute(spec: dict[str, Any], threads: int) -> Outcome:
    import os

    os.environ["FTSCALE_THREADS"] = str(threads)
    return execute(spec)


class RayExecutor(Executor):
    """Submit runs as Ray tasks.

    Args:
        workers: runs in flight at once (default: the cluster's CPUs / ``cpus_per_run``).
        address: Ray address; None starts a local instance.
        cpus_per_run, gpus_per_run: each task's resource request.
        threads: intra-op threads per run.
    """

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        cpus_per_run: float = 1.0,
        gpus_per_run: float = 0.0,
        threads: int = 1,
        **_: Any,
    ):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("the ray backend needs Ray: pip install 'ftscale[ray]'") from None
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.threads = threads
        self._workers = workers
        self.capacity = workers or 1
        self._refs: dict[Any, str] = {}
        self._remote = None
        self._started_ray = False

    def start(self) -> None:
        import os

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
                raise UserError(f"cannot reach the Ray cluster at {self.address}: {msg}") from None
            self._started_ray = True
        if self._workers is None:
            cpus = ray.cluster_resources().get("CPU", 1.0)
            self.capacity = max(1, int(cpus // max(self.cpus_per_run, 1e-9)))
        self._remote = ray.remote(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run)(
            _ray_execute
        )

    def submit(self, run_key: str, spec: dict[str, Any]) -> None:
        self._refs[self._remote.remote(spec, self.threads)] = run_key

    def wait(self, timeout: float | None = None) -> list[tuple[str, Outcome]]:
        import ray

        if not self._refs:
            return []
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            key = self._refs.pop(ref)
            try:
                out.append((key, ray.get(ref)))
            except Exception as exc:  # the task's worker died
                out.append((key, Outcome("failed", None, f"ray task failed: {exc}")))
        return out

    def shutdown(self) -> None:
        import ray

        for ref in list(self._refs):
            ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


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
