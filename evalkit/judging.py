"""The judge stage of a judged task: grade the records still pending, once each, through the cached judge.

A record whose grader replies never parse (after the rising-temperature retries) becomes a counted
`judge_failure`; a record whose judge request failed (HTTP errors after retries, timeouts) stays pending and
is graded by the next run. Grades are kept in the record (`meta["grade"]`, and the grader's last reply in
`meta["judge"]`), so tables and re-scoring need no judge; a re-run asks nothing the cache already holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evalkit.errors import ConfigError
from evalkit.records import JUDGE_FAILURE, PENDING_JUDGE, Prediction
from evalkit.scoring.judge import Judge, JudgeRequest, ask_until_all, fill, grader_text
from evalkit.task import Task


def require_judge(tasks: list[Task], judge: Judge | None) -> None:
    """Judged tasks stop before any model is loaded when no judge is configured; nothing falls back."""
    judged = [t.name for t in tasks if t.judged is not None]
    if judged and judge is None:
        raise ConfigError(
            f"{', '.join(judged)} need an LLM judge: give --judge MODEL (any OpenAI-compatible endpoint, "
            "--judge-base-url URL, key from OPENAI_API_KEY or --judge-api-key-env)"
        )


def _as_seen(record: Prediction, process: Callable[[str], str] | None) -> Prediction:
    """The record as the judge is shown it: its reply processed as the protocol's parsers see it (reasoning
    blocks removed where the protocol removes them); the stored record keeps the raw reply."""
    return record if process is None else record.model_copy(update={"output": process(record.output)})


def judge_records(
    task: Task, records: list[Prediction], judge: Judge, process: Callable[[str], str] | None = None
) -> list[Prediction]:
    """`records` with the pending ones graded (the others unchanged, in the same order); `process` is the
    protocol's reply processing (`Protocol.process`)."""
    spec = task.judged
    if spec is None:
        return records
    todo = [i for i, r in enumerate(records) if r.parse == PENDING_JUDGE and not r.failed]
    requests = [spec.request(_as_seen(records[i], process)) for i in todo]
    results = ask_until_all(judge, requests, spec.parse, tries=spec.tries)
    graded = list(records)
    for i, (grade, replies, tries) in zip(todo, results, strict=True):
        last = replies[-1] if replies else None
        if last is not None and last.error is not None and not last.final:
            continue  # the judge could not be reached: still pending, graded next run
        note: dict[str, Any] = {
            "model": judge.config.model,
            "tries": tries,
            "reply": last.text if last else None,
        }
        if last is not None and last.error is not None:  # rejected by the endpoint: a counted failure
            note["error"] = last.error
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


# --- the judge matcher: replies the rules could not read, matched by the judge -----------------------------

OPTION_MATCHER = ("option matcher prompt", "data/prompts/option_matcher.txt", "EVALKIT_OPTION_MATCHER")
YES_NO_MATCHER = ("yes/no matcher prompt", "data/prompts/yes_no_matcher.txt", "EVALKIT_YES_NO_MATCHER")
MATCHED, MATCHED_NONE = "judge_matcher", "judge_matcher_none"


def _matcher_kind(record: Prediction, kind: str) -> str | None:
    """What the matcher asks about a reply of a task of this answer kind: its options (a multiple-choice
    question that has them), yes/no, or nothing (short, open and free answers are never matched)."""
    if kind == "option":
        return "options" if record.options else None
    return "yes_no" if kind == "yes_no" else None


def _matcher_request(record: Prediction, kind: str) -> JudgeRequest:
    question, reply = str(record.meta.get("question", "")), record.output.strip()
    if kind == "options":
        options = "\n".join(f"{k}. {v}" for k, v in record.meta["options"].items())
        text = grader_text(*OPTION_MATCHER, ("question", "options", "reply"))
        content = fill(text, {"question": question, "options": options, "reply": reply})
    else:
        text = grader_text(*YES_NO_MATCHER, ("question", "reply"))
        content = fill(text, {"question": question, "reply": reply})
    return JudgeRequest(messages=[{"role": "user", "content": content}], max_tokens=8)


def _verdict(reply: str) -> str | None:
    """The matcher's verdict: a capital letter (an option, or Z for none) or yes / no / unknown."""
    word = reply.strip().rstrip(".").strip("*").strip()
    if len(word) == 1 and "A" <= word <= "Z":
        return word
    return word.lower() if word.lower() in ("yes", "no", "unknown") else None


def unmatched(records: list[Prediction], kind: str) -> int:
    """Replies the rules left unparsed that the matcher could read and has not seen yet."""
    return sum(
        r.answer is None and r.parse == "unparsed" and not r.failed and "matcher" not in r.meta
        and _matcher_kind(r, kind) is not None for r in records
    )  # fmt: skip


def match_unparsed(
    records: list[Prediction], judge: Judge, kind: str, process: Callable[[str], str] | None = None
) -> list[Prediction]:
    """Records the rules left unparsed (multiple-choice or yes/no) matched by the judge: a matched letter or
    yes/no is scored against the target (rule "judge_matcher"); "none of these" stays unanswered and wrong
    ("judge_matcher_none"). The verdict is kept in `meta["matcher"]`; a reply whose verdict never reads
    (or names no option) stays unparsed, and one the judge could not be asked about is asked next time."""
    unread = [
        (i, r) for i, r in enumerate(records) if r.answer is None and r.parse == "unparsed" and not r.failed
    ]
    todo = [(i, asked) for i, r in unread if (asked := _matcher_kind(r, kind))]
    requests = [_matcher_request(_as_seen(records[i], process), asked) for i, asked in todo]
    out = list(records)
    for (i, asked), (verdict, replies, _) in zip(
        todo, ask_until_all(judge, requests, _verdict, tries=3), strict=True
    ):
        record = records[i]
        allowed = {*record.options, "Z"} if asked == "options" else {"yes", "no", "unknown"}
        if verdict not in allowed:
            continue
        meta = record.meta | {
            "matcher": {"model": judge.config.model, "verdict": verdict, "reply": replies[-1].text}
        }
        if verdict in ("Z", "unknown"):
            out[i] = record.model_copy(update={"parse": MATCHED_NONE, "meta": meta})
        else:
            right = verdict == str(record.meta.get("target", "")).strip()
            out[i] = record.model_copy(
                update={"answer": verdict, "score": float(right), "parse": MATCHED, "meta": meta}
            )
    return out
