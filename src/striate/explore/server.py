"""The explore page's HTTP server: the standard library's `ThreadingHTTPServer`, one thread per
request, JSON in and out, the page's static files, and server-sent events for live training.

Routes (all answers JSON unless said otherwise; errors are {"error": "<one sentence>"} with
status 400, 404 or 413):

    GET  /                       the page (static/index.html)
    GET  /static/<file>          explore.js, explore.css
    GET  /api/model              the model and its layer graph (Explorer.describe)
    GET  /api/samples            bundled sample images as PNG data URLs
    GET  /api/filters[?layer=]   the first convolution's filters
    GET  /api/formula?size=&kernel=&stride=&padding=&dilation=   the output-size formula
    GET  /api/history            live training: every event so far
    GET  /api/events             live training: text/event-stream of batch and epoch events
    POST /api/run                {"image": data URL | null, "top_k", "limit"} -> prediction, maps
    POST /api/maps               {"input_id", "layer"} -> every channel of one layer
    POST /api/arithmetic         {"input_id", "layer", "position": [i, j], "channel"}
    POST /api/explain            {"input_id", "target", "layer"} -> saliency and Grad-CAM
    POST /api/attack             {"input_id", "eps", "method", "sweep"} -> FGSM/PGD

Safe by default: bound to 127.0.0.1 unless told otherwise, request bodies capped at
MAX_BODY bytes, uploads decoded in memory or in a temporary folder removed at once, only the
files of the static folder served.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlparse

import numpy as np

from .session import Explorer

__all__ = ["MAX_BODY", "EventLog", "ExploreServer", "serve"]

MAX_BODY = 16 * 2**20  # bytes of one request body (a large photo as a data URL fits)
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png",
                 ".svg": "image/svg+xml"}


class EventLog:
    """The live training events: kept in order (a page opened late replays them) and handed
    to every waiting event stream."""

    def __init__(self):
        self.events: list[dict] = []
        self.closed = False
        self._changed = threading.Condition()

    def add(self, event: dict) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> list[dict]:
        """Events after the first `seen`, waiting up to timeout seconds for one."""
        with self._changed:
            if len(self.events) <= seen and not self.closed:
                self._changed.wait(timeout)
            return self.events[seen:]


def _static(name: str) -> bytes | None:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = resources.files("striate.explore").joinpath("static", name)
    return path.read_bytes() if path.is_file() else None


def samples(explorer: Explorer) -> list[dict]:
    """Bundled inputs: one MNIST digit per class, the viz sample scene and a colour picture,
    as PNG data URLs."""
    from PIL import Image

    from ..data import load_sample
    from ..viz import load_sample as load_scene

    pictures = []
    images, labels = load_sample("test")
    for digit in range(10):
        pictures.append((f"digit {digit}", images[int(np.flatnonzero(labels == digit)[0])]))
    scene = np.rint(255 * load_scene()).astype(np.uint8)
    pictures.append(("scene", scene))
    yy, xx = np.mgrid[0:96, 0:96]
    colour = np.stack([40 + 2 * yy, 90 + yy, 200 - yy], axis=-1).astype(np.float64)
    disc = (yy - 40) ** 2 + (xx - 52) ** 2 < 22 ** 2
    colour[disc] = (230, 60, 40)
    colour[70:, :] = (60, 150, 60)
    pictures.append(("colour", np.clip(colour, 0, 255).astype(np.uint8)))
    result = []
    for name, array in pictures:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        result.append({"name": name, "image": "data:image/png;base64,"
                       + base64.b64encode(buffer.getvalue()).decode("ascii")})
    return result


class _Handler(BaseHTTPRequestHandler):
    server_version = "striate-explore"
    protocol_version = "HTTP/1.1"

    # ----- plumbing -----------------------------------------------------------------------
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value, status: int = 200) -> None:
        self._send(status, json.dumps(value, allow_nan=False, default=_plain).encode(),
                   "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def _body(self) -> dict | None:
        length = self.headers.get("Content-Length")
        try:
            length = int(length)
        except (TypeError, ValueError):
            self._error(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length")
            return None
        if length > MAX_BODY or length < 0:
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"the request body is {length:,} bytes; at most {MAX_BODY:,} are read")
            return None
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._error(HTTPStatus.BAD_REQUEST, "the request body is not JSON")
            return None
        if not isinstance(body, dict):
            self._error(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
            return None
        return body

    def _answer(self, compute) -> None:
        try:
            result = compute()
        except (ValueError, TypeError, KeyError) as error:
            self._error(HTTPStatus.BAD_REQUEST, " ".join(str(error).split()).strip("'\""))
            return
        self._json(result)

    # ----- routes ---------------------------------------------------------------------------
    def do_HEAD(self):  # noqa: N802 - the base class's name
        self.do_GET()

    def do_GET(self):  # noqa: N802
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        explorer = self.server.explorer
        if url.path in ("/", "/index.html"):
            self._send(200, _static("index.html"), _STATIC_TYPES[".html"])
        elif url.path.startswith("/static/"):
            name = url.path[len("/static/"):]
            body = _static(name)
            if body is None:
                self._error(HTTPStatus.NOT_FOUND, f"no file {name!r}")
            else:
                kind = _STATIC_TYPES.get("." + name.rsplit(".", 1)[-1], "text/plain")
                self._send(200, body, kind)
        elif url.path == "/api/model":
            self._answer(lambda: {**explorer.describe(), "live": self.server.events is not None})
        elif url.path == "/api/samples":
            self._answer(lambda: {"samples": self.server.samples()})
        elif url.path == "/api/filters":
            self._answer(lambda: explorer.filters(query.get("layer")))
        elif url.path == "/api/formula":
            self._answer(lambda: Explorer.output_size(
                _int(query, "size"), _int(query, "kernel"), _int(query, "stride", 1),
                query.get("padding", "valid"), _int(query, "dilation", 1)))
        elif url.path == "/api/history":
            events = self.server.events
            self._json({"events": [] if events is None else list(events.events)})
        elif url.path == "/api/events":
            self._stream()
        elif url.path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no page {url.path!r}")

    def do_POST(self):  # noqa: N802
        url = urlparse(self.path)
        routes = {"/api/run", "/api/maps", "/api/arithmetic", "/api/explain", "/api/attack"}
        if url.path not in routes:
            self._error(HTTPStatus.NOT_FOUND, f"no page {url.path!r}")
            return
        body = self._body()
        if body is None:
            return
        explorer = self.server.explorer
        if url.path == "/api/run":
            self._answer(lambda: explorer.run(body.get("image"), int(body.get("top_k", 5)),
                                              int(body.get("limit", 16)),
                                              int(body.get("seed", 0))))
        elif url.path == "/api/maps":
            self._answer(lambda: explorer.maps(str(body["input_id"]), str(body["layer"])))
        elif url.path == "/api/arithmetic":
            self._answer(lambda: explorer.arithmetic(
                str(body["input_id"]), str(body["layer"]), list(body["position"]),
                int(body.get("channel", 0)), body.get("in_channel")))
        elif url.path == "/api/explain":
            target = body.get("target")
            self._answer(lambda: explorer.explain(
                str(body["input_id"]), None if target is None else int(target),
                body.get("layer")))
        else:
            label = body.get("label")
            self._answer(lambda: explorer.attack(
                str(body["input_id"]), float(body.get("eps", 0.1)),
                str(body.get("method", "fgsm")), None if label is None else int(label),
                bool(body.get("sweep", False)), int(body.get("steps", 10)),
                float(body.get("sweep_max", 0.3))))

    def _stream(self) -> None:
        """Server-sent events: every event so far, then each new one as it comes, until the
        training ends (an `end` event) or the page goes away."""
        events = self.server.events
        if events is None:
            self._error(HTTPStatus.NOT_FOUND, "no training is running (start one with "
                                              "`striate train ... --explore`)")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        seen = 0
        try:
            while not self.server.stopping:
                new = events.wait(seen, timeout=15)
                if not new:
                    if events.closed:
                        break
                    self.wfile.write(b": keep-alive\n\n")
                for event in new:
                    line = json.dumps(event, allow_nan=False, default=_plain)
                    self.wfile.write(f"event: {event['type']}\ndata: {line}\n\n".encode())
                seen += len(new)
                self.wfile.flush()
                if events.closed and len(events.events) <= seen:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass


def _plain(value):
    """JSON for NumPy scalars and arrays; non-finite floats as null."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _int(query: dict, key: str, default: int | None = None) -> int:
    if key not in query:
        if default is None:
            raise ValueError(f"{key} is required")
        return default
    try:
        return int(query[key])
    except ValueError:
        raise ValueError(f"{key} must be an integer, got {query[key]!r}") from None


class ExploreServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer serving one Explorer (and, in live training, its EventLog)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 0,
                 events: EventLog | None = None, verbose: bool = False):
        super().__init__((host, port), _Handler)
        self.explorer, self.events, self.verbose = explorer, events, verbose
        self.stopping = False
        self._samples = None

    def samples(self) -> list[dict]:
        if self._samples is None:
            self._samples = samples(self.explorer)
        return self._samples

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        if shown in ("0.0.0.0", "[::]"):
            shown = "127.0.0.1"
        return f"http://{shown}:{port}/"

    def start(self) -> threading.Thread:
        """Serve in a daemon thread; returns the thread."""
        thread = threading.Thread(target=self.serve_forever, name="striate-explore",
                                  daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping = True
        if self.events is not None:
            self.events.close()
        self.shutdown()
        self.server_close()


def serve(explorer: Explorer, host: str = "127.0.0.1", port: int = 0,
          events: EventLog | None = None, verbose: bool = False) -> ExploreServer:
    """Start serving `explorer` in a background thread; returns the server (its `url`)."""
    server = ExploreServer(explorer, host, port, events, verbose)
    server.start()
    time.sleep(0)  # let the thread start accepting
    return server
