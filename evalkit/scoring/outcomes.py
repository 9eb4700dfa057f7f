"""Glue shared by every task: score a parsed label against the sample's target; count outcomes."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from evalkit.data.readers import Sample
from evalkit.records import Prediction
from evalkit.scoring.types import Parsed, Scored


def label_match(parser: Callable[[str], Parsed]) -> Callable[[str, Sample], Scored]:
    """A scorer: 1.0 when the parser's label equals the sample's target, unparsed counts as wrong."""

    def score(output: str, sample: Sample) -> Scored:
        parsed = parser(output)
        return Scored(
            parsed.label, float(parsed.label is not None and parsed.label == sample.target), parsed.rule
        )

    score.__qualname__ = f"label_match({parser.__name__})"
    return score


def outcome_counts(predictions: Iterable[Prediction]) -> dict[str, float]:
    """`unparsed` (a reply no rule could read; scored wrong) and `failed` (no reply: image/request error)."""
    preds = list(predictions)
    return {
        "unparsed": sum(p.answer is None and not p.failed for p in preds),
        "failed": sum(p.failed for p in preds),
    }
