"""``ftscale study serve``: a local, read-only page of a study while it runs.

The Python standard library's ``http.server`` serves two things on 127.0.0.1: ``/``, one HTML
page with its script and style inline (no build step, nothing fetched from the network), and
``/api/state``, the JSON of :meth:`ftscale.report.live.LiveStudy.state`. The page polls the JSON
every second and redraws only when its ``version`` changed: the progress table, the curves (an
inline SVG drawn by the page's script) and the current answer. The store is read by one thread
of this process however many pages are open (docs/report.md).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ftscale.jsonio import to_json_text
from ftscale.report.live import LiveStudy

_PAGE = Path(__file__).with_name("live.html")


class _Handler(BaseHTTPRequestHandler):
    live: LiveStudy
    page: bytes

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", self.page)
        elif path == "/api/state":
            body = to_json_text(self.live.state()).encode()
            self._send(200, "application/json", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def do_POST(self) -> None:  # read-only: nothing to post
        self._send(405, "text/plain; charset=utf-8", b"read-only\n")

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per poll is noise
        pass


class LiveServer:
    """The page's HTTP server over a :class:`LiveStudy`; ``url`` once started.

    Args:
        live: the study's live state (started and stopped with the server).
        host: the address to listen on (127.0.0.1: this machine only).
        port: the port (0: any free one).
    """

    def __init__(self, live: LiveStudy, host: str = "127.0.0.1", port: int = 0):
        page = _PAGE.read_text(encoding="utf-8").replace(
            "__TITLE__", json.dumps(live.study.name)[1:-1].replace("<", "")
        )
        handler = type("Handler", (_Handler,), {"live": live, "page": page.encode()})
        self.live = live
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> LiveServer:
        """Serve from a background thread (tests); :meth:`serve_forever` blocks instead."""
        self.live.start()
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.live.start()
        try:
            self.httpd.serve_forever()
        finally:
            self.close()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()
        self.live.stop()
