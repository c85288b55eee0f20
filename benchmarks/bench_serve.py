"""``ftscale study serve``'s web layer, measured against an ASGI alternative on the same state.

Both serve the same :class:`ftscale.report.live.LiveStudy` (a simulated study's store; the store
is read by its one polling thread either way) and the same page:

- ``stdlib``: :class:`ftscale.report.serve.LiveServer` (``http.server``, what ftscale ships);
- ``starlette``: Starlette routes under uvicorn (the stack FastAPI, and mlflow's server, use),
  each in a fresh process.

Per server: the framework's import time (s), the time from process start to the first answer
of ``/api/state`` (s), the process's resident memory after 200 requests (MiB), the mean and 95th
percentile of ``/api/state`` latency over those 200 requests (ms), and the refresh latency: from
a run finishing in the store (written by this process) to ``/api/state`` counting it (s; the
poll interval is 1 s, as in ``study serve``). Baseline: the stdlib server; ratios against it.

    .venv/bin/python benchmarks/bench_serve.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HASHES = {"sim-task": "fixture"}

CHILD = r"""
import os, sys, time, json
t0 = time.perf_counter()
kind, db, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
from ftscale.study.spec import parse_study
from ftscale.testing.simulated import simulated_study
from ftscale.report.live import LiveStudy
d = simulated_study(models=("sim-1e5", "sim-1e6", "sim-1e7"), seeds=2)
d["fit"] = {"bootstrap": 20}
live = LiveStudy(parse_study(d), db, interval=1.0, data_hashes={"sim-task": "fixture"})
t1 = time.perf_counter()
if kind == "stdlib":
    from ftscale.report.serve import LiveServer
    t2 = time.perf_counter()
    print(json.dumps({"import_s": t2 - t1}), flush=True)
    LiveServer(live, port=port).serve_forever()
else:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route
    import uvicorn
    from ftscale.jsonio import to_json_text
    from ftscale.report.serve import _PAGE
    t2 = time.perf_counter()
    print(json.dumps({"import_s": t2 - t1}), flush=True)
    page = _PAGE.read_text()
    async def index(request):
        return HTMLResponse(page)
    async def state(request):
        return Response(to_json_text(live.state()), media_type="application/json")
    app = Starlette(routes=[Route("/", index), Route("/api/state", state)])
    live.start()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(kind: str, db: Path, finish) -> dict:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api/state"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(db), str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        info = json.loads(proc.stdout.readline())
        while True:
            try:
                _get(url)
                break
            except OSError:
                time.sleep(0.01)
        first = time.perf_counter() - t0
        lat = []
        for _ in range(200):
            t = time.perf_counter()
            _get(url)
            lat.append((time.perf_counter() - t) * 1000)
        rss = _rss_mib(proc.pid)
        refresh = []
        for _ in range(3):
            before = _get(url)["progress"]["totals"]["done"]
            t = time.perf_counter()
            finish()
            while _get(url)["progress"]["totals"]["done"] == before:
                time.sleep(0.01)
            refresh.append(time.perf_counter() - t)
        return {
            "server": kind,
            "import_s": round(info["import_s"], 3),
            "first_answer_s": round(first, 3),
            "rss_mib": round(rss, 1),
            "state_ms_mean": round(statistics.mean(lat), 2),
            "state_ms_p95": round(sorted(lat)[int(0.95 * len(lat))], 2),
            "refresh_s_mean": round(statistics.mean(refresh), 3),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from ftscale.study.plan import plan_study
    from ftscale.study.spec import parse_study
    from ftscale.study.store import RunStore
    from ftscale.testing.simulated import simulated_run, simulated_study

    d = simulated_study(models=("sim-1e5", "sim-1e6", "sim-1e7"), seeds=2)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "s.db"
        store = RunStore(db)
        store.add_runs((r.run_key, r.spec) for r in plan_study(parse_study(d), HASHES))
        store.register_runner()

        def finish(n: int = 1) -> None:
            for run in store.claim(limit=n):
                store.finish(run.run_key, "done", record=simulated_run(run.spec))

        finish(20)
        rows = [measure(kind, db, finish) for kind in ("stdlib", "starlette")]
        store.close()
    base = rows[0]
    for r in rows:
        r["first_answer_ratio"] = round(r["first_answer_s"] / base["first_answer_s"], 2)
        r["rss_ratio"] = round(r["rss_mib"] / base["rss_mib"], 2)
    if args.json:
        print(json.dumps({"rows": rows}))
    else:
        keys = list(rows[0])
        print(" ".join(f"{k:>18}" for k in keys))
        for r in rows:
            print(" ".join(f"{r[k]!s:>18}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
