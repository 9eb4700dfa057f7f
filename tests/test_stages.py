"""The stages after generation, shared by `run` and `score`: records are scored again from their raw replies,
so a changed scoring rule reaches a finished run without regenerating anything, while a changed prompt is
still refused; `score` writes the same metrics.json as `run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.records import JUDGE_FAILURE, PENDING_JUDGE, Prediction, State
from evalkit.registry import get_task
from tests.support.fixtures import write_mme
from tests.test_e2e_openai import evalkit, load_jsonl


def _scripted_run(tmp_path: Path) -> tuple[list[str], Path]:
    root = tmp_path / "data"
    write_mme(root)
    ids = [s.id for s in get_task("mme").load(root / "mme").samples]
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps({"replies": {i: "Yes" if i.endswith("#0") else "No" for i in ids}}))
    args = ["run", "--model", f"scripted:{replies}", "--tasks", "mme", "--data-root", str(root)]
    return [*args, "--output", str(tmp_path / "out")], tmp_path / "out" / "replies" / "mme"


def _rewrite(path: Path, change: dict) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | change))


def test_a_new_scoring_rule_reaches_a_finished_run_without_generating(tmp_path: Path) -> None:
    args, run = _scripted_run(tmp_path)
    assert evalkit(*args).returncode == 0
    expected = json.loads((run / "metrics.json").read_text())["metrics"]
    assert expected["perception"] == 800.0  # every question right (fixture: first Yes, second No)
    # an older evalkit: another task version, and records scored by an older rule (all wrong)
    lines = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    stale = [r | {"answer": None, "score": 0.0, "parse": "unparsed"} for r in lines]
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stale))
    _rewrite(run / "manifest.json", {"task_version": 0})
    _rewrite(run / "metrics.json", {"task_version": 0})
    (tmp_path / "replies.json").unlink()  # any generation now would fail: nothing may be generated
    again = evalkit(*args)
    assert again.returncode == 0, again.stderr
    record = json.loads((run / "metrics.json").read_text())
    assert record["metrics"] == expected and record["task_version"] == get_task("mme").version
    assert json.loads((run / "manifest.json").read_text())["task_version"] == get_task("mme").version
    assert {r["parse"] for r in load_jsonl(run / "predictions.jsonl")} == {"exact"}  # scored again, kept


def test_a_new_task_version_with_other_prompts_is_refused(tmp_path: Path) -> None:
    args, run = _scripted_run(tmp_path)
    assert evalkit(*args).returncode == 0
    lines = (run / "predictions.jsonl").read_text().splitlines()
    first = json.loads(lines[0]) | {"prompt": "an older wording"}
    (run / "predictions.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    _rewrite(run / "manifest.json", {"task_version": 0})
    again = evalkit(*args)
    assert (
        again.returncode == 2
        and "task_version: 0 -> " in again.stderr
        and "(its prompts changed)" in again.stderr
    )


def test_score_writes_the_run_schema_with_its_source(tmp_path: Path) -> None:
    args, run = _scripted_run(tmp_path)
    assert evalkit(*args).returncode == 0
    out = tmp_path / "rescored"
    scored = evalkit(
        "score", "--task", "mme", "--predictions", str(run / "predictions.jsonl"), "--output", str(out)
    )
    assert scored.returncode == 0, scored.stderr
    ran, rescored = (json.loads((d / "metrics.json").read_text()) for d in (run, out))
    assert set(ran) == set(rescored)  # one schema
    assert rescored["source"] == str(run / "predictions.jsonl") and ran["source"] is None
    assert rescored["metrics"] == ran["metrics"] and rescored["model"] == ran["model"]
    assert rescored["data"]["fingerprint"] == ran["data"]["fingerprint"]


def _judged(i: int, parse: str, answer: str | None, score: float, error: str | None = None) -> Prediction:
    meta = {"target": "yes", "question": "q", "category": "VD", "subcategory": "s", "set_id": "0",
            "figure_id": str(i), "question_id": "0", "gt_answer_details": ""}  # fmt: skip
    return Prediction(
        id=str(i), prompt="", output="x", answer=answer, score=score, parse=parse, meta=meta, error=error
    )


@pytest.mark.parametrize("name", ["hallusionbench_judge", "mmvet", "llava_bench_wild"])
def test_every_judged_task_counts_alike(name: str) -> None:
    """One rule for the counts: a grade that never came (or a request the judge rejected) is a judge
    failure, a grade still to come is pending, a failed sample failed - never `unparsed`."""
    records = [
        _judged(0, PENDING_JUDGE, None, 0.0),
        _judged(1, JUDGE_FAILURE, None, 0.0),
        _judged(2, "failed", None, 0.0, error="HTTP 500"),
    ]
    assert [r.state for r in records] == [State.PENDING, State.JUDGE_FAILURE, State.FAILED]
    metrics = get_task(name).aggregate_for("llava")(records)
    assert (metrics["unparsed"], metrics["failed"], metrics["judge_failures"], metrics["pending"]) == (
        0,
        1,
        1,
        1,
    )
