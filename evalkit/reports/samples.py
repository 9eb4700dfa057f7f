"""What a report shows of a run's records: each record's outcome, and which records to embed when a run
has more than the page can hold (every failed, unparsed and wrong one first).

A run of a split without answers (an MMBench or MMMU test file without them, a VQAv2 test-dev submission)
is unscored as a whole: its metrics.json lacks its primary metric, and its read replies, scored 0 only
because there was nothing to compare them with, are "no answer key", neither right nor wrong."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum

from evalkit.records import Prediction, RunRecord, State


class Outcome(StrEnum):
    """A record's outcome as the sample browser filters it: its state, and for a scored reply its credit."""

    FAILED = "failed"  # no reply (unreadable image, failed request)
    UNPARSED = "unparsed"  # a reply no rule could read
    JUDGE_FAILURE = "judge_failure"  # the judge never gave a grade
    PENDING = "pending"  # waiting for the judge
    WRONG = "wrong"  # read, and no credit
    PARTIAL = "partial"  # read, some credit (VQA accuracy, judge grades)
    RIGHT = "right"  # read, full credit (or more: LLaVA-Bench's relative score)
    NO_KEY = "no_answer_key"  # read, in a run whose data has no answers: not scored


# Embedded first when a run has more records than the page takes: what someone auditing a run looks for.
PRIORITY = (
    Outcome.FAILED,
    Outcome.UNPARSED,
    Outcome.JUDGE_FAILURE,
    Outcome.WRONG,
    Outcome.PARTIAL,
    Outcome.PENDING,
    Outcome.NO_KEY,
    Outcome.RIGHT,
)


def scored(run: RunRecord) -> bool:
    """Whether the run was scored: its metrics hold its primary metric (a split without answers has only
    counts)."""
    return run.primary in run.metrics


def outcome(record: Prediction, scored: bool = True) -> Outcome:
    """The record's outcome; `scored=False` for a record of an unscored run (see `scored`)."""
    state = record.state
    if state is not State.SCORED:
        return {
            State.FAILED: Outcome.FAILED,
            State.UNPARSED: Outcome.UNPARSED,
            State.JUDGE_FAILURE: Outcome.JUDGE_FAILURE,
            State.PENDING: Outcome.PENDING,
        }[state]
    if not scored:
        return Outcome.NO_KEY
    if record.score >= 1.0:
        return Outcome.RIGHT
    return Outcome.PARTIAL if record.score > 0.0 else Outcome.WRONG


def counts(records: Iterable[Prediction], scored: bool = True) -> dict[Outcome, int]:
    """Records per outcome, every outcome present (zeros included), in PRIORITY order."""
    found = Counter(outcome(r, scored) for r in records)
    return {o: found.get(o, 0) for o in PRIORITY}


def select(records: list[Prediction], cap: int, scored: bool = True) -> list[Prediction]:
    """At most `cap` records, taken by PRIORITY (file order within an outcome), returned in file order."""
    if len(records) <= cap:
        return list(records)
    rank = {o: i for i, o in enumerate(PRIORITY)}
    order = sorted(range(len(records)), key=lambda i: (rank[outcome(records[i], scored)], i))
    return [records[i] for i in sorted(order[:cap])]
