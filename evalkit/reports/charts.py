"""The report's charts: per task, each model's mean per-sample score by category (`meta["category"]`: MME
subtask, POPE split, SEED dimension, ...), drawn with matplotlib's object API on its Agg canvas (no pyplot
state, no display) and returned as an inline PNG data URI."""

from __future__ import annotations

import base64
import io
from collections import defaultdict

from evalkit.records import Prediction
from evalkit.reports.samples import Outcome, outcome

ALL = "all"
# Graded later (pending) or never (judge failure): no score to average. A failed sample scores 0, as in
# the task's metrics.
UNSCORED = (Outcome.PENDING, Outcome.JUDGE_FAILURE)
HIDDEN = "\u200b"  # a zero-width space: before a label starting with "_", which a legend would drop


def label(name: str) -> str:
    """`name` as matplotlib text shows it as written: `$` escaped (no mathtext), a leading `_` kept."""
    text = name.replace("$", r"\$")
    return HIDDEN + text if text.startswith("_") else text


def category_means(records: list[Prediction]) -> dict[str, float]:
    """Mean score x 100 per category (one category, "all", when the records have none), sorted by name."""
    groups: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if outcome(r) not in UNSCORED:
            groups[str(r.meta.get("category", ALL))].append(r.score)
    return {c: 100 * sum(v) / len(v) for c, v in sorted(groups.items())}


def category_chart(task: str, by_model: dict[str, list[Prediction]]) -> str | None:
    """A horizontal grouped bar chart, one bar per model per category; None when nothing is scored."""
    from matplotlib.figure import Figure

    means = {model: category_means(records) for model, records in by_model.items()}
    categories = sorted({c for m in means.values() for c in m})
    if not categories:
        return None
    models = list(means)
    band = 0.8 / len(models)
    fig = Figure(figsize=(8.0, max(2.2, 0.9 + len(categories) * (0.2 * len(models) + 0.15))), dpi=100)
    ax = fig.add_subplot()
    for i, model in enumerate(models):
        ys = [c + i * band for c in range(len(categories))]
        values = [means[model].get(c, 0.0) for c in categories]
        bars = ax.barh(ys, values, height=band * 0.9, label=label(model), color=f"C{i % 10}")
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_yticks(
        [c + band * (len(models) - 1) / 2 for c in range(len(categories))],
        [label(c) for c in categories],
        fontsize=8,
    )
    ax.invert_yaxis()
    ax.set_xlabel("mean per-sample score (%)", fontsize=8)
    ax.set_xlim(0, max(105.0, *(v * 1.1 for m in means.values() for v in m.values())))
    ax.set_title(label(f"{task}: by category"), fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    if len(models) > 1:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
