"""Binary classification counts and precision / recall / F1 / accuracy, with unparsed outputs kept.

An unparsed prediction (None) is wrong for accuracy and sits outside TP/FP/TN/FN, the way
lmms-eval's POPE aggregation treats a reply that is neither yes nor no.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class BinaryCounts:
    tp: int
    fp: int
    tn: int
    fn: int
    unparsed: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn + self.unparsed

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else 0.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def positive_ratio(self) -> float:
        """Share of all predictions that are positive (POPE's yes-ratio)."""
        return (self.tp + self.fp) / self.n if self.n else 0.0


def binary_counts(pairs: Iterable[tuple[str | None, str]], positive: str) -> BinaryCounts:
    """Count (prediction, gold) pairs; a None prediction is unparsed."""
    tp = fp = tn = fn = unparsed = 0
    for pred, gold in pairs:
        if pred is None:
            unparsed += 1
        elif pred == positive:
            tp, fp = (tp + 1, fp) if gold == positive else (tp, fp + 1)
        else:
            fn, tn = (fn + 1, tn) if gold == positive else (fn, tn + 1)
    return BinaryCounts(tp=tp, fp=fp, tn=tn, fn=fn, unparsed=unparsed)
