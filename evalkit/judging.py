"""The judge stage of a judged task: grade the records still pending, once each, through the cached judge.

A record whose grader replies never parse (after the rising-temperature retries) becomes a counted
`judge_failure`; a record whose judge request failed (HTTP errors after retries, timeouts) stays pending and
is graded by the next run. Grades are kept in the record (`meta["grade"]`, and the grader's last reply in
`meta["judge"]`), so tables and re-scoring need no judge; a re-run asks nothing the cache already holds.
"""

from __future__ import annotations

from typing import Any

from evalkit.errors import ConfigError
from evalkit.records import Prediction
from evalkit.scoring.judge import Judge, ask_until_all
from evalkit.task import JUDGE_FAILURE, PENDING_JUDGE, Task


def require_judge(tasks: list[Task], judge: Judge | None) -> None:
    """Judged tasks stop before any model is loaded when no judge is configured; nothing falls back."""
    judged = [t.name for t in tasks if t.judged is not None]
    if judged and judge is None:
        raise ConfigError(
            f"{', '.join(judged)} need an LLM judge: give --judge MODEL (any OpenAI-compatible endpoint, "
            "--judge-base-url URL, key from OPENAI_API_KEY or --judge-api-key-env)"
        )


def judge_records(task: Task, records: list[Prediction], judge: Judge) -> list[Prediction]:
    """`records` with the pending ones graded (the others unchanged, in the same order)."""
    spec = task.judged
    if spec is None:
        return records
    todo = [i for i, r in enumerate(records) if r.parse == PENDING_JUDGE and not r.failed]
    results = ask_until_all(judge, [spec.request(records[i]) for i in todo], spec.parse, tries=spec.tries)
    graded = list(records)
    for i, (grade, replies, tries) in zip(todo, results, strict=True):
        last = replies[-1] if replies else None
        if last is not None and last.error is not None:
            continue  # the judge could not be reached: still pending, graded next run
        note: dict[str, Any] = {
            "model": judge.config.model,
            "tries": tries,
            "reply": last.text if last else None,
        }
        record = records[i]
        if grade is None:
            graded[i] = record.model_copy(
                update={
                    "answer": None,
                    "score": 0.0,
                    "parse": JUDGE_FAILURE,
                    "meta": {k: v for k, v in record.meta.items() if k != "grade"} | {"judge": note},
                }
            )
        else:
            graded[i] = record.model_copy(update={
                "answer": str(grade), "score": float(spec.score(grade)), "parse": "judge",
                "meta": {**record.meta, "grade": grade, "judge": note}})  # fmt: skip
    return graded


def pending(records: list[Prediction]) -> int:
    return sum(r.parse == PENDING_JUDGE and not r.failed for r in records)
