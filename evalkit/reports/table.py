"""Leaderboards from `metrics.json` files: wide (models x tasks, primary metric) and long (every metric), as
markdown, CSV or an HTML table."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from evalkit.errors import InputError
from evalkit.records import iter_run_records


def collect(results: Path) -> pd.DataFrame:
    """One row per (model folder, task, metric)."""
    rows = []
    for path, record in iter_run_records(results):
        model = path.parent.parent.name
        # a split without answers (a test server's) has no primary value: its cell shows "-", never 0
        metrics = record.metrics if record.primary in record.metrics else {record.primary: float("nan")}
        for key, value in (record.metrics | metrics).items():
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
                    "ci_low": record.ci95.get(key, [None, None])[0],  # its 95% confidence interval
                    "ci_high": record.ci95.get(key, [None, None])[1],
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
            f"{fmt(v)}{LIMITED}" if pd.notna(limit) and pd.notna(v) else v
            for v, limit in zip(primary["value"], primary["limit"], strict=True)
        ]
    table = primary.pivot_table(index="model", columns="task", values="value", aggfunc="first", dropna=False)
    table.columns = [f"{task} ({primary[primary.task == task].metric.iloc[0]})" for task in table.columns]
    return table.reset_index()


def long(frame: pd.DataFrame, intervals: bool = False) -> pd.DataFrame:
    """Every metric, one per row; with `intervals`, their 95% confidence intervals as two columns."""
    frame = frame.assign(limit=frame["limit"].astype("Int64"))
    columns = ["model", "task", "protocol", "metric", "value", "n", "limit"]
    columns += ["ci_low", "ci_high"] if intervals else []
    return frame[columns].sort_values(["model", "task", "metric"])


def with_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as "value [low, high]" where the metric has a 95% confidence interval (counts have none)."""
    shown = [
        v if pd.isna(low) else f"{v:.2f} [{low:.2f}, {high:.2f}]"
        for v, low, high in zip(frame["value"], frame["ci_low"], frame["ci_high"], strict=True)
    ]
    return frame.assign(value=pd.Series(shown, index=frame.index, dtype=object))


def fmt(value: object) -> str:
    if value is pd.NA:
        return ""
    if value is None:  # a pivot's empty cell among marked (text) values
        return "-"
    if isinstance(value, float):
        return "-" if value != value else f"{value:.2f}"  # NaN: no value (never shown as 0)
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


_MD_LINK = re.compile(r"\[([^\]]+)\]\((https://[^)\s]+)\)")


def _html_cell(value: object) -> str:
    """A cell's text escaped; a markdown link in it (a zoo table's hub checkpoint) made an HTML link."""
    text = html.escape(fmt(value))
    return _MD_LINK.sub(lambda m: f'<a href="{m.group(2)}">{m.group(1)}</a>', text)


def to_html(table: pd.DataFrame, note: str = "") -> str:
    """An HTML table fragment (to paste into a page or a README), every header and cell escaped."""
    cells = table.astype(object).apply(lambda column: column.map(_html_cell))
    cells.columns = [html.escape(str(c)) for c in table.columns]
    body = cells.to_html(index=False, escape=False, border=0, classes="evalkit-table")
    return body + (f"\n<p>{html.escape(note)}</p>" if note else "") + "\n"


def render(results: Path, layout: str, fmt_name: str, compare: bool = False, ci: bool = False) -> str:
    """A table of any layout: wide, long, or a paper's (evalkit/data/layouts/, optionally with its
    published numbers beside ours). `ci`: wide and long show each value's 95% confidence interval, as
    "value [low, high]" (long CSV: columns `ci_low`, `ci_high`)."""
    if layout not in ("wide", "long"):
        from evalkit.reports.zoo import render_zoo

        return render_zoo(results, layout, fmt_name, compare=compare)
    frame = collect(results)
    columns = ci and layout == "long" and fmt_name == "csv"
    frame = with_intervals(frame) if ci and not columns else frame
    table = wide(frame) if layout == "wide" else long(frame, intervals=columns)
    if fmt_name == "csv":
        return table.to_csv(index=False, float_format="%.6g")
    if fmt_name == "html":
        return to_html(table, LIMITED_NOTE if frame["limit"].notna().any() else "")
    note = f"\n{LIMITED_NOTE}\n" if frame["limit"].notna().any() else ""
    return to_markdown(table) + note
