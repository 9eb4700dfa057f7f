"""End to end through the CLI and the openai backend against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.support.fixtures import COLOURS, pope_items, write_mme, write_pope
from tests.support.openai_server import FakeOpenAIServer, image_bytes, last_user_text, prompt_contains

SHORT = "\nAnswer the question using a single word or phrase."


def seen_colour(body: dict) -> str:
    """The colour at the centre of the (single) image the client sent."""
    (data,) = image_bytes(body)
    img = Image.open(io.BytesIO(data)).convert("RGB")
    centre = img.getpixel((img.width // 2, img.height // 2))
    return min(COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLOURS[c], centre, strict=True)))


def colour_reply(body: dict) -> str:
    """A 'model' that looks at the image: answers whether the asked colour is the image's colour."""
    asked = last_user_text(body).split("Is the image ", 1)[1].split("?", 1)[0]
    return "Yes" if asked == seen_colour(body) else "No"


def evalkit(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evalkit.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_args(
    server: FakeOpenAIServer, root: Path, out: Path, tasks: str = "mme,pope", *extra: str
) -> list[str]:
    return [
        "run",
        "--model",
        "openai:tiny-test",
        "--tasks",
        tasks,
        "--data-root",
        str(root),
        "--output",
        str(out),
        "--base-url",
        server.base_url,
        *extra,
    ]


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_mme(root)
    write_pope(root)
    return root


def test_run_records_prompts_images_and_metrics(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply) as server:
        result = evalkit(
            *run_args(server, data_root, tmp_path / "out"), env={"OPENAI_API_KEY": "sk-secret-test-key-123"}
        )
        assert result.returncode == 0, result.stderr
        bodies = server.bodies
    assert len(bodies) == 14 + 10
    for body in bodies:
        assert body["temperature"] == 0 and body["model"] == "tiny-test" and body["max_tokens"] == 128
        (content,) = [m["content"] for m in body["messages"] if m["role"] == "user"]
        assert [part["type"] for part in content] == ["image_url", "text"]
        (data,) = image_bytes(body)
        img = Image.open(io.BytesIO(data)).convert("RGB")
        assert img.size == (40, 40)  # 40x24 fixture padded to a square (protocol llava, pad mode)
        assert img.getpixel((0, 0)) == (122, 116, 104)  # with the CLIP mean colour
    texts = sorted(last_user_text(b) for b in bodies)
    assert "Is the image red?" + SHORT in texts  # MME suffix replaced, POPE suffix added

    run = tmp_path / "out" / "tiny-test"
    mme = json.loads((run / "mme" / "metrics.json").read_text())
    assert mme["metrics"]["perception"] == 800.0  # 4 perception subtasks present, all right: 4 x 200
    assert mme["metrics"]["cognition"] == 200.0
    assert mme["protocol"] == "llava" and mme["n"] == 14 and mme["primary"] == "perception"
    assert mme["data"]["format"] == "authors" and mme["data"]["fingerprint"].startswith("sha256:")
    pope = json.loads((run / "pope" / "metrics.json").read_text())
    assert pope["metrics"]["f1"] == 100.0 and pope["metrics"]["accuracy"] == 100.0
    for path in run.rglob("*"):
        if path.is_file():
            assert "sk-secret-test-key-123" not in path.read_text(errors="replace")
    assert "sk-secret-test-key-123" not in result.stdout + result.stderr
    records = load_jsonl(run / "mme" / "predictions.jsonl")
    assert {r["parse"] for r in records} == {"exact"}
    assert len({r["id"] for r in records}) == 14


def test_retries_failures_and_retry_on_next_run(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply) as server:
        server.fail_next(status=429, times=2)  # retried by the client, invisible in results
        server.fail_next(status=500)
        server.fail_when(prompt_contains("Is the image yellow?"), status=500, times=None)  # always fails
        result = evalkit(*run_args(server, data_root, tmp_path / "out", "mme", "--concurrency", "4"))
        assert result.returncode == 0, result.stderr
        metrics = json.loads((tmp_path / "out" / "tiny-test" / "mme" / "metrics.json").read_text())["metrics"]
        failed = [
            r for r in load_jsonl(tmp_path / "out" / "tiny-test" / "mme" / "predictions.jsonl") if r["error"]
        ]
        assert metrics["failed"] == len(failed) == 2  # the two yellow questions, counted and wrong
        assert all("HTTP 500" in r["error"] and r["score"] == 0 for r in failed)
        assert metrics["perception"] < 800.0

        server.clear_faults()
        calls_before = server.calls
        again = evalkit(*run_args(server, data_root, tmp_path / "out", "mme"))
        assert again.returncode == 0, again.stderr
        assert server.calls - calls_before == 2  # only the failed samples are retried
    records = load_jsonl(tmp_path / "out" / "tiny-test" / "mme" / "predictions.jsonl")
    assert len(records) == len({r["id"] for r in records}) == 14 and not any(r["error"] for r in records)
    metrics = json.loads((tmp_path / "out" / "tiny-test" / "mme" / "metrics.json").read_text())["metrics"]
    assert metrics["perception"] == 800.0 and metrics["failed"] == 0


def test_stalled_request_times_out_and_is_counted(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply) as server:
        server.stall_when(prompt_contains("Is the image yellow?"), seconds=30, times=None)
        start = time.monotonic()
        result = evalkit(
            *run_args(
                server, data_root, tmp_path / "out", "pope", "--request-timeout", "0.5", "--max-retries", "1"
            )
        )
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - start < 25
    metrics = json.loads((tmp_path / "out" / "tiny-test" / "pope" / "metrics.json").read_text())["metrics"]
    stalled = [
        r for r in load_jsonl(tmp_path / "out" / "tiny-test" / "pope" / "predictions.jsonl") if r["error"]
    ]
    yellow = sum(item.object == "yellow" for item in pope_items())
    assert yellow >= 1 and metrics["failed"] == len(stalled) == yellow
    assert all("timed out" in r["error"] for r in stalled)


def test_concurrency_is_bounded_and_used(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply, latency=0.15) as server:
        result = evalkit(*run_args(server, data_root, tmp_path / "out", "mme", "--concurrency", "3"))
        assert result.returncode == 0, result.stderr
        assert 2 <= server.max_in_flight <= 3


def test_corrupt_image_is_a_counted_failure(data_root: Path, tmp_path: Path) -> None:
    (data_root / "coco" / "val2014" / "COCO_val2014_000000000101.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with FakeOpenAIServer(colour_reply) as server:
        result = evalkit(*run_args(server, data_root, tmp_path / "out", "pope"))
        assert result.returncode == 0, result.stderr
    records = load_jsonl(tmp_path / "out" / "tiny-test" / "pope" / "predictions.jsonl")
    bad = [r for r in records if r["error"]]
    assert len(records) == 10 and len(bad) == 1  # the one question on that image; the run went on
    assert all("COCO_val2014_000000000101.jpg" in r["error"] for r in bad)


def test_kill_and_resume_gives_every_sample_once_and_same_metrics(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply) as server:
        assert evalkit(*run_args(server, data_root, tmp_path / "ref")).returncode == 0
        server.latency = 0.2
        args = [
            sys.executable,
            "-m",
            "evalkit.cli",
            *run_args(
                server, data_root, tmp_path / "out", "mme,pope", "--batch-size", "2", "--concurrency", "1"
            ),
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        preds = tmp_path / "out" / "tiny-test" / "mme" / "predictions.jsonl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not preds.exists() or len(preds.read_text().splitlines()) < 4):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        partial = len(preds.read_text().splitlines())
        assert 4 <= partial < 14
        server.latency = 0.0
        resumed = evalkit(*run_args(server, data_root, tmp_path / "out"))
        assert resumed.returncode == 0, resumed.stderr
    for task, n in (("mme", 14), ("pope", 10)):
        records = load_jsonl(tmp_path / "out" / "tiny-test" / task / "predictions.jsonl")
        assert len(records) == len({r["id"] for r in records}) == n
        ref = json.loads((tmp_path / "ref" / "tiny-test" / task / "metrics.json").read_text())["metrics"]
        got = json.loads((tmp_path / "out" / "tiny-test" / task / "metrics.json").read_text())["metrics"]
        assert got == ref


def test_finished_tasks_do_not_reach_the_backend(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply) as server:
        assert evalkit(*run_args(server, data_root, tmp_path / "out")).returncode == 0
    files = sorted((tmp_path / "out").rglob("*.json*"))
    before = {f: f.read_bytes() for f in files}
    # the server is gone: a finished run must not need it, and must leave every file as it was
    again = evalkit(
        "run",
        "--model",
        "openai:tiny-test",
        "--tasks",
        "mme,pope",
        "--data-root",
        str(data_root),
        "--output",
        str(tmp_path / "out"),
        "--base-url",
        "http://127.0.0.1:9/v1",
    )
    assert again.returncode == 0, again.stderr
    assert sorted((tmp_path / "out").rglob("*.json*")) == files
    assert all(f.read_bytes() == before[f] for f in files)


def test_api_key_is_scrubbed_from_failure_reasons(data_root: Path, tmp_path: Path) -> None:
    key = "sk-very-secret-987"
    with FakeOpenAIServer(colour_reply) as server:
        server.fail_when(
            prompt_contains("Is the image yellow?"),
            status=500,
            times=None,
            message=f"upstream rejected bearer {key}",
        )
        result = evalkit(
            *run_args(server, data_root, tmp_path / "out", "pope", "--max-retries", "0"),
            env={"OPENAI_API_KEY": key},
        )
        assert result.returncode == 0, result.stderr
        assert all(r["headers"].get("authorization") == f"Bearer {key}" for r in server.requests)
    failed = [
        r for r in load_jsonl(tmp_path / "out" / "tiny-test" / "pope" / "predictions.jsonl") if r["error"]
    ]
    assert failed and all("upstream rejected bearer ***" in r["error"] for r in failed)
    for path in (tmp_path / "out").rglob("*"):
        assert path.is_dir() or key not in path.read_text()
    assert key not in result.stdout + result.stderr


def test_unauthorised_endpoint_stops_the_run(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply, api_key="right-key") as server:
        result = evalkit(
            *run_args(server, data_root, tmp_path / "out", "pope"), env={"OPENAI_API_KEY": "wrong-key"}
        )
    assert result.returncode == 2 and "HTTP 401" in result.stderr and "wrong-key" not in result.stderr
    assert not (tmp_path / "out" / "tiny-test" / "pope" / "metrics.json").exists()


def test_a_stalled_request_does_not_hold_up_the_others(data_root: Path, tmp_path: Path) -> None:
    first = "Is the image red?"
    with FakeOpenAIServer(colour_reply, latency=0.02) as server:
        server.stall_when(prompt_contains(first), seconds=2.0, times=1)  # the first red question, once
        result = evalkit(*run_args(server, data_root, tmp_path / "out", "pope", "--concurrency", "2"))
        assert result.returncode == 0, result.stderr
    records = load_jsonl(tmp_path / "out" / "tiny-test" / "pope" / "predictions.jsonl")
    assert len(records) == 10 and not any(r["error"] for r in records)
    # with a rolling window the other slot answers everything else while one request is held for 2 s, so the
    # held one is written last; waiting batch by batch would have written it in the first group
    assert records[-1]["prompt"].startswith(first)
    assert sum(r["prompt"].startswith(first) for r in records) >= 2


def test_protocol_mismatch_on_resume_is_refused(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(colour_reply) as server:
        assert evalkit(*run_args(server, data_root, tmp_path / "out", "pope")).returncode == 0
        other = evalkit(*run_args(server, data_root, tmp_path / "out", "pope", "--protocol", "lmms-eval"))
    assert other.returncode == 2
    assert "protocol" in other.stderr and "Traceback" not in other.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "nope"], "unknown task 'nope'"),
        (["--tasks", "mme", "--protocol", "xtuner"], "unknown protocol 'xtuner'"),
    ],
)
def test_bad_arguments_give_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = evalkit(
        "run",
        "--model",
        "openai:x",
        "--data-root",
        str(tmp_path),
        "--base-url",
        "http://127.0.0.1:9/v1",
        *args,
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_missing_data_folder_is_named(tmp_path: Path) -> None:
    result = evalkit(
        "run",
        "--model",
        "openai:x",
        "--tasks",
        "pope",
        "--data-root",
        str(tmp_path),
        "--base-url",
        "http://127.0.0.1:9/v1",
    )
    assert result.returncode == 2 and str(tmp_path / "pope") in result.stderr
