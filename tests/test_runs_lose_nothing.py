"""Runs that lose nothing, through the CLI against a real HTTP server on 127.0.0.1: one run per task folder
(an OS lock), endpoint answers that are not chat completions, replies UTF-8 cannot hold, endpoints that are
not there, failed starts that pin nothing, a total deadline per request, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit.fs import FolderLock
from tests.support.fixtures import write_mme, write_pope
from tests.support.openai_server import FakeOpenAIServer, prompt_contains
from tests.test_e2e_openai import colour_reply, evalkit, load_jsonl, run_args

RUN = Path("tiny-test")


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_mme(root)
    write_pope(root)
    return root


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "evalkit.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line a failed command printed (progress lines aside), never a traceback."""
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    return line


def wait_for(condition: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# --- one run per task folder --------------------------------------------------------------------------


def test_a_second_run_on_the_same_folder_is_refused_naming_the_holder(
    data_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer(colour_reply, latency=0.3) as server:
        first = spawn(*run_args(server, data_root, out, "mme", "--concurrency", "2"))
        lock = out / RUN / "mme" / ".evalkit.lock"
        wait_for(lambda: lock.exists() and lock.read_text())
        second = evalkit(*run_args(server, data_root, out, "mme"))
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert second.returncode == 2
    line = error_line(second)
    assert "in use by another evalkit run" in line and f"pid {first.pid}" in line and "Traceback" not in line
    records = load_jsonl(out / RUN / "mme" / "predictions.jsonl")
    assert len(records) == len({r["id"] for r in records}) == 14  # every id once
    assert json.loads((out / RUN / "mme" / "metrics.json").read_text())["metrics"]["perception"] == 800.0
    assert not lock.read_text()  # released, holder note cleared


def test_the_lock_dies_with_its_process(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer(colour_reply, latency=0.3) as server:
        first = spawn(*run_args(server, data_root, out, "mme", "--concurrency", "1"))
        predictions = out / RUN / "mme" / "predictions.jsonl"
        wait_for(lambda: predictions.exists() and predictions.read_text().count("\n") >= 2)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        resumed = evalkit(*run_args(server, data_root, out, "mme"))
    assert resumed.returncode == 0, resumed.stderr
    records = load_jsonl(predictions)
    assert len(records) == len({r["id"] for r in records}) == 14


def test_every_task_folder_is_locked_before_the_model_loads(data_root: Path, tmp_path: Path) -> None:
    """A run of mme,pope holds pope's folder while it is still on mme: a run of pope is refused at once,
    not after one of them has worked for hours."""
    out = tmp_path / "out"
    with FakeOpenAIServer(colour_reply, latency=0.3) as server:
        first = spawn(*run_args(server, data_root, out, "mme,pope", "--concurrency", "1"))
        lock = out / RUN / "pope" / ".evalkit.lock"
        wait_for(lambda: lock.exists() and lock.read_text())
        assert not (out / RUN / "pope" / "predictions.jsonl").exists()  # pope not started yet
        second = evalkit(*run_args(server, data_root, out, "pope"))
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert second.returncode == 2 and f"pid {first.pid}" in error_line(second)


def test_other_tasks_of_the_same_model_are_not_locked(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FolderLock(out / RUN / "mme"), FakeOpenAIServer(colour_reply) as server:
        pope = evalkit(*run_args(server, data_root, out, "pope"))
        mme = evalkit(*run_args(server, data_root, out, "mme"))
    assert pope.returncode == 0, pope.stderr
    assert mme.returncode == 2 and "in use by another evalkit run" in mme.stderr


# --- endpoint answers that are not chat completions ----------------------------------------------------

BAD_BODIES = [
    (b'{"choices": [', "application/json", "not JSON text"),
    (b'\xff\xfe{"choices": []}', "application/json", "not JSON text"),
    (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", "not a chat completion"),
    (b'{"id": "x", "object": "chat.completion"}', "application/json", "not a chat completion"),
    (b'{"id": "x", "choices": {"a": 1}}', "application/json", "not a chat completion"),
    (b'{"id": "x", "choices": [1]}', "application/json", "not a chat completion"),
    (b'{"id": "x", "choices": [{"index": 0, "message": null}]}', "application/json", "not a chat completion"),
]


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    BAD_BODIES,
    ids=["json", "bytes", "html", "no-choices", "choices-object", "choice-number", "message-null"],
)
def test_a_200_that_is_no_completion_is_a_failed_sample_retried_next_run(
    data_root: Path, tmp_path: Path, body: bytes, content_type: str, reason: str
) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer(colour_reply) as server:
        server.raw_next(
            body, times=None, content_type=content_type, predicate=prompt_contains("Is the image red?")
        )
        first = evalkit(*run_args(server, data_root, out, "mme", "--max-retries", "0"))
        assert first.returncode == 0, first.stderr
        metrics = json.loads((out / RUN / "mme" / "metrics.json").read_text())["metrics"]
        failed = [r for r in load_jsonl(out / RUN / "mme" / "predictions.jsonl") if r["error"]]
        assert metrics["failed"] == len(failed) == 5  # the five "red?" questions; counted, scored wrong
        assert all(reason in r["error"] and r["score"] == 0 for r in failed)
        server.clear_faults()
        second = evalkit(*run_args(server, data_root, out, "mme"))
    assert second.returncode == 0, second.stderr
    records = load_jsonl(out / RUN / "mme" / "predictions.jsonl")
    assert len(records) == 14 and not any(r["error"] for r in records)


def test_a_reply_holding_a_lone_surrogate_is_recorded_and_says_so(data_root: Path, tmp_path: Path) -> None:
    def reply(body: dict) -> str:
        return colour_reply(body) + " \ud83d" if "red?" in str(body) else colour_reply(body)

    out = tmp_path / "out"
    with FakeOpenAIServer(reply) as server:
        result = evalkit(*run_args(server, data_root, out, "mme"))
    assert result.returncode == 0, result.stderr
    records = load_jsonl(out / RUN / "mme" / "predictions.jsonl")
    repaired = [r for r in records if "repaired" in r["meta"]]
    assert len(records) == 14 and len(repaired) == 5
    for r in repaired:
        assert r["output"].endswith(" \ufffd") and r["meta"]["repaired"] == ["output"]
        assert r["answer"] == r["meta"]["target"]  # "Yes \ufffd" still reads as yes (MME's prefix rule)


# --- endpoints that are not there ------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/v1", "http://no-such-host.invalid/v1"])
def test_an_endpoint_that_is_not_there_stops_the_run(data_root: Path, tmp_path: Path, url: str) -> None:
    base = url.format(port=_closed_port())
    out = tmp_path / "out"
    args = ["run", "--model", "openai:m", "--tasks", "mme", "--data-root", str(data_root)]
    result = evalkit(*args, "--output", str(out), "--base-url", base, timeout=60)
    assert result.returncode == 2
    line = error_line(result)
    assert f"cannot reach the model endpoint at {base}" in line
    predictions = out / "m" / "mme" / "predictions.jsonl"
    assert not (predictions.exists() and predictions.read_text())  # no sample was tried, none recorded failed
    assert not (out / "m" / "mme" / "metrics.json").exists()


def test_an_unreachable_or_keyless_judge_stops_before_any_work(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply) as server:
        args = run_args(server, data_root, tmp_path / "out", "mme", "--judge", "j", "--judge-matcher")
        unreachable = evalkit(*args, "--judge-base-url", f"http://127.0.0.1:{_closed_port()}/v1")
        keyless = evalkit(*args)  # no --judge-base-url, no OPENAI_BASE_URL, no key: the hosted API
        assert server.calls == 0
    assert unreachable.returncode == 2 and "cannot reach the judge endpoint" in unreachable.stderr
    assert keyless.returncode == 2 and "$OPENAI_API_KEY is not set" in keyless.stderr
    error_line(unreachable), error_line(keyless)


# --- failed starts pin nothing; a mismatch names what differs ---------------------------------------


def test_a_bad_dtype_writes_nothing(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply) as server:
        result = evalkit(*run_args(server, data_root, tmp_path / "out", "mme", "--dtype", "fp8"))
    assert result.returncode == 2 and "--dtype must be one of" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_model_that_fails_to_load_pins_nothing(data_root: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-ckpt"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    out = tmp_path / "out"
    args = ["run", "--tasks", "mme", "--data-root", str(data_root), "--output", str(out), "--name", "m"]
    failed = evalkit(*args, "--model", str(broken))
    predictions = out / "m" / "mme" / "predictions.jsonl"
    assert failed.returncode == 2 and "config.json" in error_line(failed)
    assert not (predictions.exists() and predictions.read_text())
    with FakeOpenAIServer(colour_reply) as server:  # the same folder, another model: nothing was pinned
        ok = evalkit(*args, "--model", "openai:tiny-test", "--base-url", server.base_url)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((out / "m" / "mme" / "manifest.json").read_text())["model"] == "openai:tiny-test"


def test_a_settings_mismatch_names_only_what_differs(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer(colour_reply) as server:
        first = evalkit(*run_args(server, data_root, out, "mme", "--name", "x", "--limit", "4"))
        assert first.returncode == 0, first.stderr
        again = evalkit(*run_args(server, data_root, out, "mme", "--name", "x", "--strip-reasoning"))
    assert again.returncode == 2
    line = error_line(again)
    assert "replies.reasoning_tags: [] -> [['<think>', '</think>'], ['<analysis>', '</analysis>']]" in line
    for same in ("generation", "protocol:", "model:", "model_settings", "task_version", "data_fingerprint"):
        assert same not in line


# --- a total deadline per request ----------------------------------------------------------------------


def test_request_timeout_is_a_total_deadline_against_a_trickling_server(
    data_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer(colour_reply) as server:
        # each byte comes within any read timeout, but the whole reply would take ~0.05 s x 300 bytes = 15 s
        server.trickle_next(0.05, times=None)
        started = time.monotonic()
        result = evalkit(
            *run_args(
                server, data_root, out, "mme", "--limit", "2", "--request-timeout", "1", "--max-retries", "0"
            )
        )
        took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    records = load_jsonl(out / RUN / "mme" / "predictions.jsonl")
    assert len(records) == 2 and all("timed out" in r["error"] for r in records)
    assert took < 12  # well before one trickled reply could finish (15 s); without a deadline: 2 x 15 s


# --- Ctrl-C ---------------------------------------------------------------------------------------------


def test_ctrl_c_while_the_backend_loads_is_honoured(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply) as server:
        server.models_latency = 60.0  # the endpoint check at load hangs, as a model loading would
        proc = spawn(*run_args(server, data_root, tmp_path / "out", "mme"))
        wait_for(lambda: server.model_list_calls > 0)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)  # not the 60 s the load would take
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    assert "run the same command to resume" in stderr and "evalkit run --model openai:tiny-test" in stderr


def test_ctrl_c_during_a_run_keeps_what_was_written(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply, latency=0.3) as server:
        proc = spawn(*run_args(server, data_root, tmp_path / "out", "mme", "--concurrency", "2"))
        predictions = tmp_path / "out" / RUN / "mme" / "predictions.jsonl"
        wait_for(lambda: predictions.exists() and predictions.read_text().count("\n") >= 2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 130 and "Traceback" not in stderr
        records = load_jsonl(predictions)
        assert len(records) == len({r["id"] for r in records}) >= 2  # what was written is whole
        resumed = evalkit(*run_args(server, data_root, tmp_path / "out", "mme"))
    assert resumed.returncode == 0, resumed.stderr
    assert len(load_jsonl(predictions)) == 14


SLOW_CLEANUP = """
import time
from evalkit.cli import interruptible

@interruptible
def command():
    try:
        print("ready", flush=True)
        time.sleep(60)
    finally:  # cleanup that hangs after the first Ctrl-C (a driver, a network share)
        print("cleaning up", flush=True)
        time.sleep(60)

command()
"""


def test_a_second_ctrl_c_exits_at_once_without_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLEANUP], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    assert proc.stdout.readline().strip() == "cleaning up"  # the first Ctrl-C is being handled...
    proc.send_signal(signal.SIGINT)  # ... and the second does not wait for it
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "interrupted again: exiting now" in stderr and "Traceback" not in stderr


def test_the_deadline_counts_from_the_start_of_the_request() -> None:
    """Headers late, then a body that never comes: the request ends at the deadline, not a read timeout
    after the headers (4 s total: about 4 s, where per-phase timeouts would give 3 + 4 = 7 s)."""
    import openai

    from evalkit.endpoints import http_client

    with FakeOpenAIServer(lambda body: "hi", latency=3.0) as server:
        server.hold_body_next(30, times=None)
        client = openai.OpenAI(
            api_key="x", base_url=server.base_url, max_retries=0, timeout=4, http_client=http_client(4)
        )
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        took = time.monotonic() - started
    assert 3.0 <= took < 6.0


def test_the_environments_proxy_is_used(data_root: Path, tmp_path: Path) -> None:
    """HTTP(S)_PROXY is honoured by the model endpoint's client (clusters often reach APIs only so)."""
    from tests.support.proxy import ForwardProxy

    with FakeOpenAIServer(colour_reply) as server, ForwardProxy() as proxy:
        env = {"HTTP_PROXY": proxy.url, "http_proxy": proxy.url, "NO_PROXY": "", "no_proxy": ""}
        result = evalkit(*run_args(server, data_root, tmp_path / "out", "mme", "--limit", "2"), env=env)
        assert result.returncode == 0, result.stderr
        assert proxy.forwarded >= 3  # the endpoint check and both requests went through the proxy
        assert server.calls == 2
