"""The vectorised twins of the benchmark aggregates that group records, for the bootstrap (`ratios.Ratios`).

Each gives, from the records of each unit, the same metrics as the aggregate it is named after in `tasks/`
as ratios of sums over units, so a thousand resamples are weighed in numpy instead of re-aggregated. The
bootstrap uses a twin only where it reproduces its aggregate on the data at hand, and the tests check each
against re-aggregation on the same draws (tests/scoring/test_bootstrap.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from evalkit.records import Prediction
from evalkit.scoring.group import group_by, snake
from evalkit.scoring.ratios import Ratio, Ratios, Units, per_unit


def _right(units: Units) -> np.ndarray:
    """1 where every record of the unit is right."""
    return np.array([all(p.score == 1.0 for p in unit) for unit in units], dtype=float)


def _share(units: Units, where: Callable[[Prediction], bool], empty: float | None = None) -> Ratio:
    """The accuracy over the records `where` holds."""
    scores = per_unit(units, lambda p: p.score if where(p) else 0.0)
    return Ratio(scores, per_unit(units, lambda p: float(where(p))), empty=empty)


def mmbench(questions: Units) -> Ratios:
    """tasks/mmbench.py `aggregate`, over questions with all their circular passes: `overall` and per
    l2-category / category (keyed by the question's first row) circular, `vanilla` over pass 0."""
    right = _right(questions)
    found = {
        "overall": Ratio(right, np.ones(len(questions))),
        "vanilla": _share(questions, lambda p: p.meta["pass"] == 0, empty=0.0),
    }
    main = [min(q, key=lambda p: p.meta["index"]).meta for q in questions]
    for column in ("l2_category", "category"):
        if any(m[column] for m in main):
            names = np.array([snake(m[column]) for m in main])
            found |= {n: Ratio(right * (names == n), (names == n) * 1.0) for n in sorted(set(names.tolist()))}
    return Ratios(found)


def pope(questions: Units, unparsed_as: str | None = None) -> Ratios:
    """tasks/pope.py `aggregate`: per split and pooled (`all`) accuracy, precision, recall, F1 and yes-ratio
    from the confusion counts; `f1` and `accuracy` the means over the splits."""

    def cell(p: Prediction) -> str:  # as `binary_counts` counts the record
        answer = p.answer if p.answer is not None else unparsed_as
        gold = p.meta["target"] == "yes"
        if answer is None:
            return "unparsed"
        return ("tp" if gold else "fp") if answer == "yes" else ("fn" if gold else "tn")

    owner = np.repeat(np.arange(len(questions)), [len(q) for q in questions])
    cells = np.array([cell(p) for q in questions for p in q])
    split_of = np.array([p.meta["category"] for q in questions for p in q])

    def count(split: str | None, kind: str) -> np.ndarray:
        rows = (cells == kind) & (True if split is None else split_of == split)
        return np.bincount(owner[rows], minlength=len(questions)).astype(float)

    found: dict[str, Ratio] = {}
    splits = sorted(set(split_of.tolist()))
    for prefix, split in [*((s, s) for s in splits), ("all", None)]:
        tp, fp, fn, tn, unparsed = (count(split, c) for c in ("tp", "fp", "fn", "tn", "unparsed"))
        n = tp + fp + fn + tn + unparsed
        found |= {
            f"{prefix}_accuracy": Ratio(tp + tn, n, empty=0.0),
            f"{prefix}_precision": Ratio(tp, tp + fp, empty=0.0),
            f"{prefix}_recall": Ratio(tp, tp + fn, empty=0.0),
            f"{prefix}_f1": Ratio(2 * tp, 2 * tp + fp + fn, empty=0.0),
            f"{prefix}_yes_ratio": Ratio(tp + fp, n, empty=0.0),
        }
    means = {key: ("mean", tuple(f"{s}_{key}" for s in splits)) for key in ("f1", "accuracy")}
    return Ratios(found, means)


def mme(pairs: Units, totals: Mapping[str, frozenset[str]]) -> Ratios:
    """tasks/mme.py `aggregate`, over image pairs: per subtask `_acc`, `_acc_plus` and their sum; `totals`
    (perception, cognition: their subtasks) sum the subtasks present, `total` sums those."""
    subtask = np.array([pair[0].meta["category"].lower() for pair in pairs])
    right = _right(pairs)
    scores, sizes = per_unit(pairs, lambda p: p.score), per_unit(pairs, lambda p: 1.0)
    found: dict[str, Ratio] = {}
    sums: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name in sorted(set(subtask.tolist())):
        member = (subtask == name) * 1.0
        found[f"{name}_acc"] = Ratio(scores * member, sizes * member)
        found[f"{name}_acc_plus"] = Ratio(right * member, member)
        sums[name] = ("sum", (f"{name}_acc", f"{name}_acc_plus"))
    present = set(subtask.tolist())
    for total, names in totals.items():
        if names & present:  # as the aggregate: a family with no subtask present has no number
            sums[total] = ("sum", tuple(sorted(names & present)))
    sums["total"] = ("sum", tuple(t for t in totals if t in sums))
    return Ratios(found, sums)


def hallusionbench(sets: Units, keys: tuple[str, ...] = ("category", "subcategory")) -> Ratios:
    """tasks/hallusionbench.py `aggregate`, over question sets (each holding whole figure and question
    groups): `aacc` per question, `facc` / `qacc` per figure / question group all right."""

    def groups(last: str) -> tuple[np.ndarray, np.ndarray]:  # per set: its groups all right, its groups
        found = [
            group_by(s, lambda p: tuple(p.meta[k] for k in (*keys, "set_id", last))).values() for s in sets
        ]
        right = [sum(all(p.score == 1.0 for p in g) for g in f) for f in found]
        return np.array(right, dtype=float), np.array([len(f) for f in found], dtype=float)

    aacc = Ratio(per_unit(sets, lambda p: p.score), per_unit(sets, lambda p: 1.0), empty=0.0)
    return Ratios({"aacc": aacc, "facc": Ratio(*groups("figure_id")), "qacc": Ratio(*groups("question_id"))})


def mmstar(questions: Units, macro: bool = False) -> Ratios:
    """tasks/mmstar.py `aggregate`: micro accuracies (overall, per category), macro ones (means of the l2
    accuracies, overall and within each category; those kept under keys with a space, which no metric has)
    and `l2_<name>`; `macro` names the macro ones plainly and the micro ones `micro_`."""

    def pair(p: Prediction) -> tuple[str, str]:
        return p.meta["category"], p.meta["l2_category"]

    pairs = sorted({pair(p) for q in questions for p in q})
    found = {"accuracy": _share(questions, lambda p: True)}
    for c in sorted({c for c, _ in pairs}):
        found[snake(c)] = _share(questions, lambda p, c=c: p.meta["category"] == c)
    within = {f"{c} / {n}": _share(questions, lambda p, cn=(c, n): pair(p) == cn) for c, n in pairs}
    l2 = {
        n: _share(questions, lambda p, n=n: p.meta["l2_category"] == n) for n in sorted({n for _, n in pairs})
    }
    means = {"accuracy": ("mean", tuple(f"l2 {n}" for n in l2))}
    means |= {snake(c): ("mean", tuple(f"{c} / {n}" for d, n in pairs if d == c)) for c, _ in pairs}
    micro, averaged = ("micro_", "") if macro else ("", "macro_")
    out = {f"{micro}{k}": r for k, r in found.items()} | within | {f"l2 {n}": r for n, r in l2.items()}
    out |= {f"l2_{snake(n)}": r for n, r in l2.items()}
    return Ratios(out, {f"{averaged}{k}": m for k, m in means.items()})
