"""The dashboard's web server: the page, its static files, and one JSON endpoint that reads the charts.

Stdlib ``http.server`` (a threading server): nothing to install, and the page needs only files and one
JSON document. Routes:

- ``/`` the page (``static/index.html``); ``/static/...`` its script, style and the vendored Chart.js.
- ``/api/charts[?day=YYYY-MM-DD]`` every chart for the day (default: the server's ``--day``, else today
  in UTC at each request), read through :func:`tools.dashboard.source.collect` on each request: one
  ``Query`` per page of each table chart, one ``GetMetricData`` per CloudWatch chart. The page polls it.

Guarantees: binds the host given (``127.0.0.1`` by default; nothing else listens), serves only files
under ``static/`` (no path escapes it), and answers a read error with HTTP 502 and a one-line JSON
``{"error": ...}`` that the page shows, so a stopped stack never kills the server. Reads run on the
request's thread; the boto3 clients are built once and shared (boto3 clients are thread-safe).
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.exceptions import PipelineError

__all__ = ["STATIC", "DashboardServer", "Reader"]

STATIC = Path(__file__).with_name("static")
Reader = Callable[[date], dict[str, Any]]
"""Reads every chart of a day as a JSON-ready document (``collect`` bound to a source)."""
_log = logging.getLogger(__name__)


class DashboardServer(ThreadingHTTPServer):
    """The server: ``reader`` is called for every ``/api/charts`` request. Close it with ``server_close()``."""

    daemon_threads = True

    def __init__(self, host: str, port: int, reader: Reader, *, day: date | None, refresh_s: float) -> None:
        self.reader = reader
        self.day = day
        self.refresh_s = refresh_s
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    _TYPES: ClassVar[dict[str, str]] = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path in {"/", "/index.html"}:
            self._file(STATIC / "index.html")
        elif parts.path.startswith("/static/"):
            target = (STATIC / parts.path.removeprefix("/static/")).resolve()
            if STATIC.resolve() not in target.parents or not target.is_file():
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such file: {parts.path}"})
            else:
                self._file(target)
        elif parts.path == "/api/charts":
            self._charts(parse_qs(parts.query))
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {parts.path}"})

    def _charts(self, query: dict[str, list[str]]) -> None:
        text = query.get("day", [""])[0]
        try:
            day = date.fromisoformat(text) if text else self.server.day or datetime.now(UTC).date()
        except ValueError:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"day {text!r} is not YYYY-MM-DD"})
            return
        try:
            document = self.server.reader(day)
        except (PipelineError, ClientError, BotoCoreError) as exc:
            self._json(HTTPStatus.BAD_GATEWAY, {"error": f"reading the charts failed: {exc}"})
            return
        document["refresh_s"] = self.server.refresh_s
        self._json(HTTPStatus.OK, document)

    def _file(self, path: Path) -> None:
        body = path.read_bytes()
        kind = self._TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, f"{kind}; charset=utf-8" if kind.startswith("text/") else kind, body)

    def _json(self, status: HTTPStatus, document: dict[str, Any]) -> None:
        self._send(status, "application/json", orjson.dumps(document))

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        """Answer; a browser that left (closed tab, reload) before the answer is not an error."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError) as exc:
            _log.debug("%s left before the answer: %s", self.address_string(), exc)

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        _log.debug("%s " + format, self.address_string(), *args)
