"""Leaderboards from `metrics.json` files: wide (models x tasks, primary metric) and long (every metric)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evalkit.errors import InputError
from evalkit.records import iter_run_records


def collect(results: Path) -> pd.DataFrame:
    """One row per (model folder, task, metric)."""
    rows = []
    for path, record in iter_run_records(results):
        model = path.parent.parent.name
        for key, value in record.metrics.items():
            rows.append(
                {
                    "model": model,
                    "task": record.task,
                    "protocol": record.protocol,
                    "metric": key,
                    "value": value,
                    "primary": key == record.primary,
                    "n": record.n,
                    "limit": record.limit,  # a --limit run: only its first `limit` samples
                }
            )
    if not rows:
        raise InputError(f"no <model>/<task>/metrics.json files under {results}")
    return pd.DataFrame(rows)


LIMITED = "†"
LIMITED_NOTE = f"{LIMITED} a --limit run over the task's first samples only: not the benchmark's number"


def wide(frame: pd.DataFrame) -> pd.DataFrame:
    """Models x tasks, each cell the task's primary metric; a --limit run's value is marked."""
    primary = frame[frame["primary"]].copy()
    if primary["limit"].notna().any():
        primary["value"] = [
            f"{v:.2f}{LIMITED}" if limit == limit and limit is not None else v
            for v, limit in zip(primary["value"], primary["limit"], strict=True)
        ]
    table = primary.pivot_table(index="model", columns="task", values="value", aggfunc="first")
    table.columns = [f"{task} ({primary[primary.task == task].metric.iloc[0]})" for task in table.columns]
    return table.reset_index()


def long(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(limit=frame["limit"].astype("Int64"))
    return frame[["model", "task", "protocol", "metric", "value", "n", "limit"]].sort_values(
        ["model", "task", "metric"]
    )


def fmt(value: object) -> str:
    if value is pd.NA:
        return ""
    if isinstance(value, float):
        return "" if value != value else f"{value:.2f}"  # NaN -> empty cell
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def render(results: Path, layout: str, fmt_name: str, compare: bool = False) -> str:
    """A table of any layout: wide, long, or a paper's (evalkit/data/layouts/, optionally with its
    published numbers beside ours)."""
    if layout not in ("wide", "long"):
        from evalkit.reports.zoo import render_zoo

        return render_zoo(results, layout, fmt_name, compare=compare)
    frame = collect(results)
    table = wide(frame) if layout == "wide" else long(frame)
    if fmt_name == "csv":
        return table.to_csv(index=False, float_format="%.6g")
    note = f"\n{LIMITED_NOTE}\n" if frame["limit"].notna().any() else ""
    return to_markdown(table) + note
