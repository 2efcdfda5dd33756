"""A Prometheus text-format endpoint for tests: what a scraped exporter looks like to Prometheus."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def serve_metrics(render: Callable[[], str], host: str, port: int) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``render()`` in the Prometheus text format on ``host:port`` (0: any free port), in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # Prometheus gives up on a slow scrape (a loaded box): its next scrape comes a second later
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer((host, port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, thread
