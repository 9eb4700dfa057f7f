"""Aggregates as ratios of sums over units, so a bootstrap can weigh units by how often it drew them.

Almost every benchmark metric is `scale x (sum of a numerator) / (sum of a denominator)` over the records or
units it covers (an accuracy, an all-correct rate, a precision), or a mean of such ratios. `Ratios` holds
one numerator and one denominator per unit for each metric, and evaluates a whole block of resamples with
one matrix product. A task's `Ratios` builder is the vectorised twin of its aggregate; `bootstrap` uses it
only where it reproduces the aggregate on the data.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from evalkit.records import Prediction
from evalkit.scoring.group import snake
from evalkit.scoring.outcomes import grouped_accuracy

Units = Sequence[Sequence[Prediction]]  # the records of each unit, units in a fixed order


@dataclass(frozen=True)
class Ratio:
    """A metric as `scale * sum(num) / sum(den)` over the units drawn, rounded as `group.percent` rounds.
    `empty` is its value when the units drawn give a zero denominator; None: the aggregate leaves the key
    out (a group none of whose records was drawn)."""

    num: np.ndarray
    den: np.ndarray
    scale: float = 100.0
    empty: float | None = None


@dataclass(frozen=True)
class Ratios:
    """A task's metrics as ratios, plus keys combined from others in order: ("sum", keys) adds them (a key
    left out counts 0, as MME's totals count a missing subtask), ("mean", keys) averages them."""

    ratios: dict[str, Ratio]
    combined: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [*self.ratios, *self.combined]

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """The numerators and the denominators, units x ratios."""
        ratios = self.ratios.values()
        return np.stack([r.num for r in ratios], axis=1), np.stack([r.den for r in ratios], axis=1)

    def values(self, top: np.ndarray, bottom: np.ndarray) -> dict[str, np.ndarray]:
        """Each metric from the summed numerators and denominators (resamples x ratios); NaN where the
        aggregate would leave the key out."""
        ratios = list(self.ratios.values())
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.round(np.array([r.scale for r in ratios]) * (top / bottom), 6)
        empty = np.array([np.nan if r.empty is None else r.empty for r in ratios])
        values = np.where(bottom == 0, empty, values)
        out = {k: values[:, j] for j, k in enumerate(self.ratios)}
        for key, (how, parts) in self.combined.items():
            found = [out[p] for p in parts]
            if how == "sum":
                out[key] = np.round(sum((np.nan_to_num(f) for f in found), np.zeros(len(top))), 6)
            else:  # the mean of the parts present, as the aggregates average the groups a resample holds
                stacked = np.vstack(found) if found else np.full((1, len(top)), np.nan)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a resample holding none of them: NaN
                    out[key] = np.round(np.nanmean(stacked, axis=0), 6)
        return out

    def evaluate(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Each metric for each row of `counts` (resamples x units: how often each unit was drawn)."""
        num, den = self.matrices()
        return self.values(counts @ num, counts @ den)


Builder = Callable[[Units], Ratios]


def per_unit(units: Units, value: Callable[[Prediction], float]) -> np.ndarray:
    """The sum of `value` over each unit's records."""
    return np.array([sum(value(p) for p in unit) for unit in units], dtype=float)


def accuracy_ratios(*fields: str) -> Builder:
    """The twin of `outcomes.grouped_accuracy(*fields)`: `accuracy`, then one accuracy per value of each
    field (a later field's key replaces an earlier one of the same name, as there)."""

    def build(units: Units) -> Ratios:
        n = len(units)
        owner = np.repeat(np.arange(n), [len(unit) for unit in units])
        records = [p for unit in units for p in unit]
        score = np.array([p.score for p in records], dtype=float)
        ratios = {"accuracy": Ratio(_sums(owner, score, n), _sums(owner, None, n), empty=0.0)}
        for name in fields:
            values = [str(p.meta[name]) for p in records]
            keys = {v: snake(v) for v in set(values)}  # each value's metric key, made once
            labels = [keys[v] for v in values]
            order = {label: j for j, label in enumerate(sorted(set(labels)))}
            code = np.array([order[label] for label in labels])
            for value, j in order.items():
                rows = code == j
                ratios[value] = Ratio(_sums(owner[rows], score[rows], n), _sums(owner[rows], None, n))
        return Ratios(ratios)

    return build


def _sums(owner: np.ndarray, weights: np.ndarray | None, units: int) -> np.ndarray:
    return np.bincount(owner, weights=weights, minlength=units).astype(float)


_GROUPED = grouped_accuracy().__code__


def twin(aggregate: Callable[[list[Prediction]], dict[str, float]]) -> Builder | None:
    """The vectorised twin of an aggregate made by `grouped_accuracy(...)` (its fields read from the
    closure), seen through wrappers that name it as `__wrapped__`; else None."""
    while getattr(aggregate, "__code__", None) is not _GROUPED:
        if (aggregate := getattr(aggregate, "__wrapped__", None)) is None:
            return None
    fields = inspect.getclosurevars(aggregate).nonlocals.get("fields")
    return accuracy_ratios(*fields) if isinstance(fields, tuple) else None
