"""A small, real OpenAI-compatible chat-completions HTTP server for tests (standard library only).

Usage::

    with FakeOpenAIServer(reply=lambda body: "B") as server:
        client = openai.OpenAI(api_key="sk-test", base_url=server.base_url)
        server.fail_next(status=429, times=2)
        ...
        assert server.calls == 3
        assert server.requests[-1]["body"]["temperature"] == 0.0

Faults are planned per test and consumed one per matching request, in the order they were added.
Stalls wait on a ``threading.Event`` so that ``stop()`` interrupts them promptly.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Body = dict[str, Any]
Predicate = Callable[[Body], bool]

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"

_ERROR_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout", "request_timeout"),
    409: ("conflict", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("requests", "rate_limit_exceeded"),
}


# --------------------------------------------------------------------------- request-body helpers


def _content_parts(message: Body) -> list[Body]:
    """Normalise a message's content (a string or a list of parts) into a list of parts."""
    content = message.get("content")
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [part for part in content if isinstance(part, dict)]
    return []


def _messages(body: Body, role: str | None) -> list[Body]:
    """The body's messages, optionally restricted to one role."""
    messages = body.get("messages") or []
    return [m for m in messages if isinstance(m, dict) and (role is None or m.get("role") == role)]


def text_parts(body: Body, role: str | None = None) -> list[str]:
    """All text parts of the request's messages (optionally only those of ``role``), in order."""
    return [
        str(part.get("text", ""))
        for message in _messages(body, role)
        for part in _content_parts(message)
        if part.get("type") == "text"
    ]


def prompt_text(body: Body, role: str | None = None) -> str:
    """All text parts joined with newlines (handy for marker matching)."""
    return "\n".join(text_parts(body, role))


def last_user_text(body: Body) -> str:
    """The text of the last user message (its text parts joined with newlines), or ``""``."""
    users = _messages(body, "user")
    if not users:
        return ""
    return "\n".join(str(p.get("text", "")) for p in _content_parts(users[-1]) if p.get("type") == "text")


def image_urls(body: Body, role: str | None = None) -> list[str]:
    """The ``image_url.url`` strings of all image parts (data URLs or http URLs), in order."""
    urls: list[str] = []
    for message in _messages(body, role):
        for part in _content_parts(message):
            if part.get("type") != "image_url":
                continue
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                urls.append(url)
    return urls


def decode_data_url(url: str) -> tuple[str, bytes]:
    """Split ``data:<mime>;base64,<payload>`` into ``(mime, bytes)``; raises ValueError otherwise."""
    if not url.startswith("data:") or "," not in url:
        raise ValueError(f"not a data URL: {url[:40]!r}")
    header, payload = url[5:].split(",", 1)
    params = header.split(";")
    if "base64" not in params[1:]:
        raise ValueError(f"data URL is not base64-encoded: {header!r}")
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64 in data URL: {exc}") from exc
    return params[0], data


def image_bytes(body: Body, role: str | None = None) -> list[bytes]:
    """Decoded bytes of every ``data:...;base64,`` image in the request (non-data URLs are skipped)."""
    return [decode_data_url(url)[1] for url in image_urls(body, role) if url.startswith("data:")]


def image_mime_types(body: Body, role: str | None = None) -> list[str]:
    """MIME types of every data-URL image in the request, e.g. ``["image/png"]``."""
    return [decode_data_url(url)[0] for url in image_urls(body, role) if url.startswith("data:")]


def prompt_contains(marker: str) -> Predicate:
    """A predicate for ``fail_when``/``stall_when``: true if any text part contains ``marker``."""
    return lambda body: marker in prompt_text(body)


def echo_last_user_text(body: Body) -> str:
    """The default reply: echo the last user text."""
    return last_user_text(body)


def _model_entry(model: str) -> Body:
    """One ``/v1/models`` entry."""
    return {"id": model, "object": "model", "created": 0, "owned_by": "evalkit-tests"}


def _count_tokens(text: str) -> int:
    """A crude whitespace token count (good enough for a usage block)."""
    return len(text.split())


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """A planned fault: an error status, or a stall (then a normal reply), for ``times`` matching calls."""

    kind: str  # "error", "stall", "raw" (a 200 with this body), "trickle" or "hold_body" (sent slowly)
    times: int | None = 1  # None: forever
    status: int = 500
    message: str | None = None
    code: str | None = None
    seconds: float = 0.0
    retry_after_ms: int | None = None
    predicate: Predicate | None = None
    body: bytes = b""  # "raw": the body sent as it is
    content_type: str = "application/json"

    def matches(self, body: Body) -> bool:
        """Whether this fault applies to ``body`` (a raising predicate counts as no match)."""
        if self.predicate is None:
            return True
        try:
            return bool(self.predicate(body))
        except Exception:
            return False


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer bound to loopback that tracks open connections so they can be closed."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: FakeOpenAIServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record unexpected handler exceptions instead of printing them to stderr."""
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, ConnectionError | TimeoutError):
            self.owner.errors.append(exc)


class _Handler(BaseHTTPRequestHandler):
    """Request handler; all state lives on the owning FakeOpenAIServer."""

    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive backstop; stop() closes connections explicitly anyway

    def setup(self) -> None:
        super().setup()
        self.server.owner._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging."""

    # ----------------------------------------------------------------- verbs

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        owner = self.server.owner
        with owner._lock:
            owner.model_list_calls += 1
        if owner._wait(owner.models_latency):
            self.close_connection = True
            return
        if path == MODELS_PATH:
            self._send_json(200, {"object": "list", "data": [_model_entry(m) for m in owner.models]})
        elif path.startswith(MODELS_PATH + "/"):
            model = path[len(MODELS_PATH) + 1 :]
            if model in owner.models:
                self._send_json(200, _model_entry(model))
            else:
                self._send_error(404, f"The model '{model}' does not exist", code="model_not_found")
        else:
            self._send_error(404, f"Unknown path: GET {path}")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        raw = self._read_body()
        if path != CHAT_PATH:
            self._send_error(404, f"Unknown path: POST {path}")
            return
        self.server.owner._handle_chat(self, raw)

    # ----------------------------------------------------------------- I/O helpers

    def _send_raw(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _send_trickle(
        self, payload: Body, seconds_per_byte: float, owner: FakeOpenAIServer, hold: float = 0.0
    ) -> None:
        """A 200 JSON reply whose body comes one byte every `seconds_per_byte` (a slow or broken proxy), or,
        with `hold`, whose headers come at once and whose body only after `hold` seconds."""
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.flush()
            if owner._wait(hold):
                return
            for i in range(len(data)):
                if owner._wait(seconds_per_byte):
                    break
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass
        self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, payload: Body, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client gave up (e.g. after a stall); nothing to do

    def _send_error(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        kind, default_code = _ERROR_KINDS.get(status, ("server_error", "server_error"))
        error = {"message": message, "type": kind, "param": None, "code": code or default_code}
        self._send_json(status, {"error": error}, headers)


# --------------------------------------------------------------------------- the server


class FakeOpenAIServer:
    """An OpenAI-compatible ``/v1/chat/completions`` + ``/v1/models`` server on 127.0.0.1 (port 0).

    ``reply(body) -> str`` produces the assistant content (default: echo the last user text).
    ``latency`` seconds are added to every chat request (interruptible) to make concurrency observable.
    ``retry_after_ms`` is sent on every injected 429/5xx so the SDK retries almost immediately.
    If ``api_key`` is set, requests without ``Authorization: Bearer <api_key>`` get a 401.
    """

    def __init__(
        self,
        reply: Callable[[Body], str] | None = None,
        *,
        latency: float = 0.0,
        models: list[str] | None = None,
        api_key: str | None = None,
        retry_after_ms: int = 5,
    ) -> None:
        self.reply: Callable[[Body], str] = reply or echo_last_user_text
        self.latency = latency
        self.models_latency = 0.0  # seconds before GET /v1/models answers (a server still starting)
        self.model_list_calls = 0
        self.models: list[str] = list(models or ["fake-vlm"])
        self.api_key = api_key
        self.retry_after_ms = retry_after_ms
        self.errors: list[BaseException] = []  # unexpected exceptions in handlers or in ``reply``
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._requests: list[Body] = []
        self._faults: list[Fault] = []
        self._calls = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeOpenAIServer:
        """Bind and start serving in a background thread; returns self."""
        if self._httpd is not None:
            return self
        self._stop_event.clear()
        self._httpd = _Server(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving: interrupt stalls, close open connections, join threads (bounded by ``timeout``)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stop_event.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._connections and self._in_flight == 0:
                    break
            time.sleep(0.01)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` — pass as ``base_url`` to ``openai.OpenAI``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ----------------------------------------------------------------- fault scripting

    def fail_next(
        self,
        status: int = 500,
        times: int = 1,
        *,
        message: str | None = None,
        code: str | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        """Answer the next ``times`` chat requests with ``status`` and an OpenAI-style error body."""
        self._add(Fault("error", times, status, message, code, retry_after_ms=retry_after_ms))

    def fail_when(
        self,
        predicate: Predicate,
        status: int = 500,
        times: int | None = 1,
        *,
        message: str | None = None,
        code: str | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        """Fail the next ``times`` requests whose body satisfies ``predicate`` (``times=None``: always)."""
        self._add(
            Fault("error", times, status, message, code, retry_after_ms=retry_after_ms, predicate=predicate)
        )

    def raw_next(
        self,
        body: bytes,
        times: int | None = 1,
        *,
        content_type: str = "application/json",
        predicate: Predicate | None = None,
    ) -> None:
        """Answer the next ``times`` chat requests with HTTP 200 and ``body`` as it is (invalid JSON, bytes
        that are not UTF-8, an HTML page from a proxy)."""
        self._add(Fault("raw", times, 200, body=body, content_type=content_type, predicate=predicate))

    def trickle_next(self, seconds_per_byte: float, times: int | None = 1) -> None:
        """Send the next ``times`` replies one byte every ``seconds_per_byte``."""
        self._add(Fault("trickle", times, seconds=seconds_per_byte))

    def hold_body_next(self, seconds: float, times: int | None = 1) -> None:
        """Send the next ``times`` replies' headers (after any ``latency``), then hold the body."""
        self._add(Fault("hold_body", times, seconds=seconds))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` responses for ``seconds`` (interruptible by ``stop()``), then reply."""
        self._add(Fault("stall", times, seconds=seconds))

    def stall_when(self, predicate: Predicate, seconds: float, times: int | None = 1) -> None:
        """Stall requests whose body satisfies ``predicate`` (``times=None``: always)."""
        self._add(Fault("stall", times, seconds=seconds, predicate=predicate))

    def clear_faults(self) -> None:
        """Drop all planned faults."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """Number of planned faults not yet fully consumed (forever-faults count as one)."""
        with self._lock:
            return len(self._faults)

    def _add(self, fault: Fault) -> None:
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be >= 1 (or None for fail_when/stall_when)")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, body: Body) -> Fault | None:
        """Consume one use of the first planned fault that matches ``body`` (caller holds the lock)."""
        for index, fault in enumerate(self._faults):
            if not fault.matches(body):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[index]
            return fault
        return None

    # ----------------------------------------------------------------- observations

    @property
    def requests(self) -> list[Body]:
        """Snapshot of recorded chat requests: ``{"method", "path", "headers", "body", "time"}``.

        Header names are lower-cased (e.g. ``req["headers"]["authorization"]``).
        """
        with self._lock:
            return list(self._requests)

    @property
    def bodies(self) -> list[Body]:
        """Snapshot of the recorded JSON bodies only."""
        return [r["body"] for r in self.requests]

    @property
    def last_body(self) -> Body:
        """The most recent request body (raises IndexError if none)."""
        return self.requests[-1]["body"]

    @property
    def calls(self) -> int:
        """Total ``POST /v1/chat/completions`` requests received (including failed/stalled ones)."""
        with self._lock:
            return self._calls

    @property
    def in_flight(self) -> int:
        """Chat requests being handled right now."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """Maximum number of chat requests handled concurrently so far."""
        with self._lock:
            return self._max_in_flight

    def reset(self) -> None:
        """Clear recorded requests, counters, faults and errors (keeps reply/latency)."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._calls = 0
            self._max_in_flight = self._in_flight
        self.errors.clear()

    # ----------------------------------------------------------------- internals

    def _register(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, interruptibly; returns True if the server is stopping."""
        if seconds <= 0:
            return self._stop_event.is_set()
        return self._stop_event.wait(seconds)

    def _handle_chat(self, handler: _Handler, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            body = None
            parse_error = f"Invalid JSON body: {exc}"
        else:
            parse_error = "" if isinstance(body, dict) else "Request body must be a JSON object"
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = {
            "method": "POST",
            "path": handler.path,
            "headers": headers,
            "body": body if isinstance(body, dict) else {},
            "time": time.time(),
        }
        with self._lock:
            self._requests.append(record)
            self._calls += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            fault = self._take_fault(record["body"]) if not parse_error else None
        try:
            self._respond(handler, record["body"], headers, fault, parse_error)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _respond(
        self, handler: _Handler, body: Body, headers: dict[str, str], fault: Fault | None, parse_error: str
    ) -> None:
        if self._wait(self.latency):
            handler.close_connection = True
            return
        if parse_error:
            handler._send_error(400, parse_error)
            return
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            handler._send_error(401, "Incorrect API key provided.")
            return
        if fault is not None and fault.kind == "stall" and self._wait(fault.seconds):
            handler.close_connection = True  # stopping: drop the connection without replying
            return
        if fault is not None and fault.kind == "raw":
            handler._send_raw(200, fault.body, fault.content_type)
            return
        if fault is not None and fault.kind == "error":
            retry_ms = fault.retry_after_ms if fault.retry_after_ms is not None else self.retry_after_ms
            extra = {"retry-after-ms": str(retry_ms)} if fault.status == 429 or fault.status >= 500 else {}
            message = fault.message or f"Injected fault: HTTP {fault.status}"
            handler._send_error(fault.status, message, code=fault.code, headers=extra)
            return
        if body.get("stream"):
            handler._send_error(400, "FakeOpenAIServer does not support stream=true")
            return
        try:
            content = self.reply(body)
        except Exception as exc:  # a broken reply callable should fail loudly in the test, not hang
            self.errors.append(exc)
            handler._send_error(500, f"reply callable raised {exc!r}", headers={"x-should-retry": "false"})
            return
        prompt_tokens = sum(_count_tokens(t) for t in text_parts(body)) + 85 * len(image_urls(body))
        completion_tokens = _count_tokens(content)
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.models[0],
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if fault is not None and fault.kind == "trickle":
            handler._send_trickle(payload, fault.seconds, self)
            return
        if fault is not None and fault.kind == "hold_body":
            handler._send_trickle(payload, 0.0, self, hold=fault.seconds)
            return
        handler._send_json(200, payload)
