"""Answers a benchmark file carries, for test splits whose answers were withheld at release and published
later (MMBench test: the server closed 2026-03-31 and its answers came out; MMMU test: 2026-02-12).

A file carries every answer or none. With every answer, the split is scored like a dev split and its metrics
say so (`published_answers`: how many questions were scored against published answers); with none, the run
only counts the replies a submission file will carry (`answered`). A file answering some rows but not all is
refused at load, naming it and its first row without an answer: scoring it would count the unanswered rows
as wrong, or score a subset under the benchmark's name (VLMEvalKit likewise takes an answer file only when
no answer is missing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from evalkit.errors import InputError

if TYPE_CHECKING:
    from evalkit.records import Prediction

PUBLISHED = "published_answers"
WITHHELD = frozenset({"", "?"})  # an empty cell, or the "?" MMMU's test files hold in place of the answer


def answers_present(rows: Sequence[tuple[str, bool]], what: str) -> bool:
    """Whether the rows (where, has an answer) of `what` carry answers: all of them (True) or none (False);
    some but not all is an error naming the first row without one."""
    answered = sum(has for _, has in rows)
    if answered in (0, len(rows)):
        return answered > 0
    first = next(where for where, has in rows if not has)
    raise InputError(
        f"{first}: no answer, while {answered:,} of the {len(rows):,} rows of {what} have one; a file must "
        "carry every answer or none (a partial file is not scored)"
    )


Aggregate = Callable[[list["Prediction"]], dict[str, float]]


def scored_if_answered(aggregate: Aggregate, published: bool, question: str | None = None) -> Aggregate:
    """`aggregate` where the records carry targets, plus `published_answers` (how many questions: records, or
    distinct values of meta `question` where several records ask one) on a split whose answers were withheld
    at release; without targets only `answered`, the replies a parse rule could read."""

    def metrics(predictions: list[Prediction]) -> dict[str, float]:
        if not any(p.meta.get("target") for p in predictions):
            return {"answered": sum(p.answer is not None for p in predictions)}
        found = aggregate(predictions)
        questions = len({p.meta[question] for p in predictions}) if question else len(predictions)
        return found | {PUBLISHED: questions} if published else found

    metrics.__qualname__ = f"scored_if_answered({getattr(aggregate, '__qualname__', aggregate)})"
    metrics.__wrapped__ = aggregate  # type: ignore[attr-defined]  # what it wraps, as functools.wraps names it
    return metrics
