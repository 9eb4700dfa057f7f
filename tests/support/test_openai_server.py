"""Quick checks of the fake OpenAI server against the real ``openai`` SDK."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.support.openai_server import FakeOpenAIServer, image_bytes, prompt_contains, text_parts

PNG = b"\x89PNG\r\n\x1a\n" + b"fake-image-bytes"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def _client(server: FakeOpenAIServer, **kwargs: object) -> openai.OpenAI:
    opts: dict[str, object] = {
        "api_key": "sk-test",
        "base_url": server.base_url,
        "max_retries": 0,
        "timeout": 5.0,
    }
    opts.update(kwargs)
    return openai.OpenAI(**opts)  # type: ignore[arg-type]


def _ask(client: openai.OpenAI, text: str, image: bytes | None = None) -> str:
    content: list[dict[str, object]] = [{"type": "text", "text": text}]
    if image is not None:
        url = "data:image/png;base64," + base64.b64encode(image).decode()
        content.insert(0, {"type": "image_url", "image_url": {"url": url}})
    resp = client.chat.completions.create(
        model="fake-vlm",
        messages=[{"role": "user", "content": content}],  # type: ignore[list-item]
        temperature=0.0,
        max_tokens=16,
    )
    return resp.choices[0].message.content or ""


def test_normal_reply_and_recording(server: FakeOpenAIServer) -> None:
    with _client(server) as client:
        assert _ask(client, "What is shown?", image=PNG) == "What is shown?"
        server.reply = lambda body: "B"
        resp = client.chat.completions.create(model="m2", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == "B"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "m2"
    assert resp.usage is not None and resp.usage.total_tokens == resp.usage.prompt_tokens + 1
    assert server.calls == 2
    first = server.requests[0]
    assert first["headers"]["authorization"] == "Bearer sk-test"
    assert first["body"]["temperature"] == 0.0 and first["body"]["max_tokens"] == 16
    assert first["body"]["model"] == "fake-vlm"
    assert text_parts(first["body"]) == ["What is shown?"]
    assert image_bytes(first["body"]) == [PNG]


def test_models_endpoint(server: FakeOpenAIServer) -> None:
    with _client(server) as client:
        assert [m.id for m in client.models.list()] == ["fake-vlm"]
    with urllib.request.urlopen(server.base_url + "/models", timeout=5) as resp:
        assert json.load(resp)["object"] == "list"
    assert server.calls == 0


def test_429_then_success(server: FakeOpenAIServer) -> None:
    server.fail_next(status=429)
    start = time.monotonic()
    with _client(server, max_retries=2) as client:
        assert _ask(client, "ok?") == "ok?"
    assert server.calls == 2
    assert server.pending_faults == 0
    assert time.monotonic() - start < 1.0  # retry-after-ms keeps the SDK's back-off short


def test_errors_are_openai_shaped_and_predicate_faults(server: FakeOpenAIServer) -> None:
    server.fail_when(prompt_contains("POISON"), status=400, times=None, message="bad item")
    with _client(server) as client:
        with pytest.raises(openai.BadRequestError) as info:
            _ask(client, "item POISON here")
        assert info.value.status_code == 400
        assert isinstance(info.value.body, dict) and info.value.body["message"] == "bad item"
        assert _ask(client, "clean item") == "clean item"
        server.fail_next(status=500)
        with pytest.raises(openai.InternalServerError):
            _ask(client, "clean again")
    assert server.calls == 3


def test_stall_times_out_and_stop_is_prompt() -> None:
    srv = FakeOpenAIServer().start()
    try:
        srv.stall_next(seconds=30)
        start = time.monotonic()
        with _client(srv, timeout=0.3) as client, pytest.raises(openai.APITimeoutError):
            _ask(client, "slow")
        assert time.monotonic() - start < 3.0
        assert srv.in_flight == 1  # the handler is still stalled
    finally:
        start = time.monotonic()
        srv.stop()
        assert time.monotonic() - start < 1.5
    assert srv.in_flight == 0
    assert not [t for t in threading.enumerate() if t.name == "fake-openai"]


def test_concurrency_is_observable() -> None:
    with FakeOpenAIServer(latency=0.2) as srv, _client(srv) as client:
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda i: _ask(client, f"q{i}"), range(8)))
        assert answers == [f"q{i}" for i in range(8)]
        assert srv.calls == 8
        assert srv.max_in_flight >= 2
