"""95% confidence intervals by a seeded percentile bootstrap over a benchmark's independent units.

A unit is what a benchmark's records are independent in: an MME image with its two questions, an MMBench
question with all its circular passes, a HallusionBench question set, a question elsewhere. A resample
draws as many units as there are, with replacement (within each stratum where the task names strata: MME's
subtasks and POPE's splits have fixed sizes), rebuilds the record list and runs the task's own aggregate
on it. A unit drawn a second time is relabelled (`#copyK` on its last field and on the record ids), so the
aggregate's grouping counts it as another unit, not as more records of the first. Where the task has a
vectorised twin of its aggregate (`ratios.Ratios`) the same draws are weighed in numpy instead; a twin that
does not reproduce the aggregate on the data is not used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from evalkit.records import Prediction
from evalkit.scoring.group import group_by
from evalkit.scoring.ratios import Builder, Ratios

RESAMPLES = 1000
SEED = 0
# counts, not metrics: the standard counts, a split without answers' (`submission_counts`, `answered`), and
# how many questions a once-withheld split scored against published answers (evalkit/data/answers.py)
COUNTS = frozenset(
    {"unparsed", "failed", "judge_failures", "pending", "answered", "empty", "published_answers"}
)
BLOCK = 1 << 20  # resamples x units weighed at once by the vectorised path (8 MB of draws or counts)
TOLERANCE = 1e-5  # a twin agrees with the aggregate when every metric is within this (6-decimal percents)

Aggregate = Callable[[list[Prediction]], dict[str, float]]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unit:
    """A task's independent unit: the meta `fields` that name one (none: each record is one), its name in
    metrics.json, the meta fields of the strata it is drawn `within`, and the aggregate's vectorised twin."""

    fields: tuple[str, ...] = ()
    name: str = "question"
    within: tuple[str, ...] = ()
    vectorised: Builder | None = None

    def describe(self) -> dict[str, Any]:
        return {"unit": self.name} | ({"within": list(self.within)} if self.within else {})


@dataclass(frozen=True)
class Plan:
    """The units of a record list (their record indices, first-seen order) and the strata they are drawn
    within (unit indices)."""

    units: list[list[int]]
    strata: list[np.ndarray]
    relabel: str | None  # the meta field a copy's value is suffixed on (the unit's last field)


def plan(records: Sequence[Prediction], unit: Unit) -> Plan:
    fields, within = unit.fields, unit.within
    if fields:
        named = group_by(range(len(records)), lambda i: tuple(records[i].meta[f] for f in fields))
        units = list(named.values())
    else:
        units = [[i] for i in range(len(records))]
    if within:
        strata = group_by(range(len(units)), lambda u: tuple(records[units[u][0]].meta[f] for f in within))
        return Plan(units, [np.array(s) for s in strata.values()], fields[-1] if fields else None)
    return Plan(units, [np.arange(len(units))], fields[-1] if fields else None)


def positions(plan: Plan, resamples: int, seed: int) -> Iterator[list[np.ndarray]]:
    """Each resample's picks, per stratum: as many positions in it as it holds units, with replacement."""
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield [rng.integers(0, len(s), len(s)) for s in plan.strata]


def draws(plan: Plan, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The units of each resample (unit indices)."""
    for picked in positions(plan, resamples, seed):
        yield np.concatenate([s[p] for s, p in zip(plan.strata, picked, strict=True)])


def relabelled(record: Prediction, field: str | None, copy: int) -> Prediction:
    """Copy `copy` (1, 2, ...) of a record, told apart from the original by its id and unit field."""
    tag = f"#copy{copy}"
    meta = record.meta if field is None else {**record.meta, field: f"{record.meta[field]}{tag}"}
    return record.model_copy(update={"id": record.id + tag, "meta": meta})


class Resampler:
    """Record lists for drawn units; the copies of a unit drawn again are made once and reused."""

    def __init__(self, records: Sequence[Prediction], plan: Plan) -> None:
        self.plan = plan
        self._copies: dict[tuple[int, int], list[Prediction]] = {
            (u, 0): [records[i] for i in members] for u, members in enumerate(plan.units)
        }

    def _copy(self, unit: int, copy: int) -> list[Prediction]:
        key = (unit, copy)
        if key not in self._copies:
            self._copies[key] = [relabelled(p, self.plan.relabel, copy) for p in self._copies[(unit, 0)]]
        return self._copies[key]

    def records(self, drawn: np.ndarray) -> list[Prediction]:
        seen: dict[int, int] = {}
        out: list[Prediction] = []
        for unit in drawn.tolist():
            copy = seen[unit] = seen.get(unit, -1) + 1
            out.extend(self._copies[(unit, 0)] if copy == 0 else self._copy(unit, copy))
        return out


def reaggregated(
    records: Sequence[Prediction], aggregate: Aggregate, plan: Plan, keys: Sequence[str], resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Each key's value in each resample, by running the aggregate on it (NaN where it leaves a key out)."""
    out = {k: np.full(resamples, np.nan) for k in keys}
    resampler = Resampler(records, plan)
    for r, drawn in enumerate(draws(plan, resamples, seed)):
        metrics = aggregate(resampler.records(drawn))
        for k in keys:
            if k in metrics:
                out[k][r] = metrics[k]
    return out


def weighed(
    ratios: Ratios, plan: Plan, keys: Sequence[str], resamples: int, seed: int
) -> dict[str, np.ndarray]:
    """Each key's value in each resample from the twin: the same draws, counted per kind of unit (units
    alike in every numerator and denominator), then summed with one matrix product."""
    num, den = ratios.matrices()
    rows, kind = kinds(np.hstack([num, den]))
    kind = kind.astype(np.min_scalar_type(len(rows)))  # small: the gathers below move less
    per_stratum = [kind[s] for s in plan.strata]
    drawn = positions(plan, resamples, seed)
    size = max(1, BLOCK // max(len(rows), len(kind)))  # resamples per block: their draws and counts bounded
    blocks: list[np.ndarray] = []
    while block := list(islice(drawn, size)):
        # each resample's kinds offset into its own row of counts: one bincount per stratum for the block
        offsets = (np.arange(len(block)) * len(rows))[:, None]
        counts = np.zeros(len(block) * len(rows))
        for j, stratum in enumerate(per_stratum):
            picked = np.stack([p[j] for p in block])
            counts += np.bincount((stratum[picked] + offsets).ravel(), minlength=len(counts))
        blocks.append(counts.reshape(len(block), len(rows)) @ rows)
    sums = np.concatenate(blocks)
    values = ratios.values(sums[:, : num.shape[1]], sums[:, num.shape[1] :])
    return {k: values[k] for k in keys}


def kinds(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a matrix (one per kind of unit) and each row's kind, column by column (faster
    than sorting whole rows)."""
    kind = np.zeros(len(matrix), dtype=np.int64)
    for column in matrix.T:
        values, code = np.unique(column, return_inverse=True)
        kind = np.unique(kind * len(values) + code, return_inverse=True)[1].reshape(-1)
    first = np.unique(kind, return_index=True)[1]
    return matrix[first], kind


def agrees(ratios: Ratios, plan: Plan, expected: dict[str, float], keys: Sequence[str]) -> bool:
    """Whether the twin gives the aggregate's own metrics (each unit once) on every key."""
    if not set(keys) <= set(ratios.keys):
        return False
    once = ratios.evaluate(np.ones((1, len(plan.units))))
    return all(abs(float(once[k][0]) - expected[k]) <= TOLERANCE for k in keys)


@dataclass(frozen=True)
class Replicates:
    values: dict[str, np.ndarray]  # key -> its value in each resample (NaN: absent from that resample)
    vectorised: bool  # made by the twin, not by re-running the aggregate


def replicates(
    records: Sequence[Prediction], aggregate: Aggregate, unit: Unit, keys: Sequence[str] | None = None,
    resamples: int = RESAMPLES, seed: int = SEED, expected: dict[str, float] | None = None,
) -> Replicates:  # fmt: skip
    """The bootstrap distribution of the aggregate's metrics (`keys`; default: every one but the counts)."""
    expected = aggregate(list(records)) if expected is None else expected
    keys = [k for k in (expected if keys is None else keys) if k in expected and k not in COUNTS]
    if not keys:  # a split without answers: nothing to resample
        return Replicates({}, vectorised=False)
    the_plan = plan(records, unit)
    if unit.vectorised is not None:
        ratios = unit.vectorised([[records[i] for i in u] for u in the_plan.units])
        if agrees(ratios, the_plan, expected, keys):
            return Replicates(weighed(ratios, the_plan, keys, resamples, seed), vectorised=True)
        log.warning(
            "the vectorised twin of this aggregate disagrees with it on these records; re-aggregating"
        )
    return Replicates(reaggregated(records, aggregate, the_plan, keys, resamples, seed), vectorised=False)


def ci95(
    records: Sequence[Prediction], aggregate: Aggregate, unit: Unit | None = None,
    keys: Sequence[str] | None = None, resamples: int = RESAMPLES, seed: int = SEED,
    expected: dict[str, float] | None = None,
) -> dict[str, tuple[float, float]]:  # fmt: skip
    """Each metric's 2.5th and 97.5th percentile over the resamples (of those holding the key); {} when there
    are no records or no metrics (a split without answers)."""
    if not records:
        return {}
    found = replicates(records, aggregate, unit or Unit(), keys, resamples, seed, expected).values
    out: dict[str, tuple[float, float]] = {}
    for key, values in found.items():
        values = values[~np.isnan(values)]
        if len(values):
            low, high = np.percentile(values, [2.5, 97.5])
            out[key] = (round(float(low), 6), round(float(high), 6))
    return out
