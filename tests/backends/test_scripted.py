"""The scripted backend: a real Backend answering from a table, through the whole runner and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.backends.scripted import ScriptedBackend
from evalkit.pipeline import LazyBackend
from evalkit.protocols import get_protocol
from evalkit.registry import get_task
from evalkit.runner import RunSettings, run_task
from tests.support.fixtures import write_mme
from tests.test_e2e_openai import evalkit, load_jsonl


def test_runs_a_task_in_process_and_sees_padded_images(tmp_path: Path) -> None:
    write_mme(tmp_path / "data")
    backend = ScriptedBackend(lambda request: "Yes")
    settings = RunSettings(
        name="s",
        model="scripted",
        protocol=get_protocol("llava"),
        data_root=tmp_path / "data",
        output=tmp_path / "out",
    )
    record = run_task(get_task("mme"), settings, LazyBackend(lambda: backend, batch_size=4))
    # 7 images, each asked one true and one false question: "Yes" gets acc 50 and acc_plus 0 per subtask
    assert record.metrics["existence_acc"] == 50.0 and record.metrics["existence_acc_plus"] == 0.0
    assert record.metrics["perception"] == 4 * 50.0 and record.n == 14
    assert len(backend.seen) == 14 and {r.images[0].size for r in backend.seen} == {(40, 40)}  # padded
    assert all(r.template == "vicuna_v1" and r.max_new_tokens == 128 for r in backend.seen)


def test_cli_with_a_replies_file(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mme(root)
    ids = [s.id for s in get_task("mme").load(root / "mme").samples]
    replies = tmp_path / "replies.json"
    # the first question of every image right ("Yes"), the second one too ("No"); one id left unanswered
    table = {i: ("Yes" if i.endswith("#0") else "No") for i in ids[:-1]}
    replies.write_text(json.dumps({"replies": table}))
    args = ["run", "--model", f"scripted:{replies}", "--tasks", "mme", "--data-root", str(root)]
    result = evalkit(*args, "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    run = tmp_path / "out" / "replies" / "mme"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["metrics"]["failed"] == 1 and metrics["model_config"]["backend"] == "scripted"
    failed = [r for r in load_jsonl(run / "predictions.jsonl") if r["error"]]
    assert [r["id"] for r in failed] == [ids[-1]] and "no scripted reply" in failed[0]["error"]
