"""Grouping helpers and metric-key naming."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def group_by(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Items grouped by key, groups in first-seen order."""
    groups: dict[K, list[T]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return dict(groups)


def snake(name: str) -> str:
    """A metric key from a display name: "Instance Attributes" -> "instance_attributes", "OCR" -> "ocr"."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def percent(fraction: float) -> float:
    """Fractions become percent (0-100), rounded to 6 decimals so records stay readable and stable."""
    return round(100.0 * fraction, 6)


def mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def accuracy(scores: Iterable[float]) -> float:
    """Mean score in percent (each score is 0..1)."""
    return percent(mean(scores))


def all_correct_rate(
    items: Iterable[T], group: Callable[[T], Hashable], correct: Callable[[T], bool]
) -> float:
    """Percent of groups whose every item is correct (MME acc+, HallusionBench fAcc/qAcc, circular eval)."""
    groups = group_by(items, group)
    return percent(mean(float(all(correct(i) for i in members)) for members in groups.values()))
