"""The result of scoring one output."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scored:
    """What was extracted from an output (None: unparsed), its score and the rule that decided."""

    answer: str | None
    score: float
    parse: str

    @property
    def unparsed(self) -> bool:
        return self.answer is None


@dataclass(frozen=True)
class Parsed:
    """A parser's decision: the label (None when no rule applies) and the rule's name."""

    label: str | None
    rule: str
