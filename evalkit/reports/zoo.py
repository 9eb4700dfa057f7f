"""Model-zoo tables as their papers print them: a layout (`evalkit/data/layouts/<name>.yaml`) names the
header, each column's task and metric and the decimals; published numbers (`evalkit/data/published/*.json`,
each with its source and protocol) can stand beside ours. A new paper's table is a new layout file.

Rows are the model folders of a results folder, with the records made under the layout's protocol (a column
means one thing); the identity columns (name, LLM, checkpoint) come from the model's config. A cell with no
result is "-", never 0. With `compare`, a cell reads "ours (published, difference)", the difference marked
`*` where the published value lies outside our 95% confidence interval (metrics.json `ci95`), even allowing
for the rounding of the published value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from evalkit.errors import ConfigError, InputError
from evalkit.records import RunRecord, iter_run_records
from evalkit.reports.table import LIMITED, LIMITED_NOTE

DATA = Path(__file__).resolve().parent.parent / "data"
MISSING = "-"
OUTSIDE = "*"
OUTSIDE_NOTE = f"{OUTSIDE} the published value lies outside our 95% confidence interval (metrics.json ci95)"


@dataclass(frozen=True)
class Column:
    header: str
    task: str
    metric: tuple[str, ...]  # one metric, or several joined (MME "P/C")
    decimals: int
    joiner: str = "/"


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    protocol: str
    published: str | None
    identity: tuple[str, ...]
    columns: tuple[Column, ...]


def layout_names() -> list[str]:
    return sorted(p.stem for p in (DATA / "layouts").glob("*.yaml"))


@cache
def get_layout(name: str) -> Layout:
    path = DATA / "layouts" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown table layout {name!r} (known: {', '.join(layout_names())}, wide, long)")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    decimals = int(raw.get("decimals", 1))
    columns = tuple(
        Column(
            header=c["header"],
            task=c["task"],
            metric=tuple(c["metric"]) if isinstance(c["metric"], list) else (c["metric"],),
            decimals=int(c.get("decimals", decimals)),
            joiner=c.get("joiner", "/"),
        )
        for c in raw["columns"]
    )
    return Layout(
        name, raw.get("title", name), raw["protocol"], raw.get("published"), tuple(raw["identity"]), columns
    )


@cache
def published(name: str) -> dict[str, Any]:
    path = DATA / "published" / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"no published numbers {name!r} in {path.parent}")
    return json.loads(path.read_text(encoding="utf-8"))


def _cell(column: Column, record: RunRecord | None) -> tuple[str, float | None]:
    """The cell text and its number (None where it is not one number)."""
    if record is None or any(m not in record.metrics for m in column.metric):
        return MISSING, None
    values = [record.metrics[m] for m in column.metric]
    text = column.joiner.join(f"{v:.{column.decimals}f}" for v in values)
    return text, values[0] if len(values) == 1 else None


def _interval(column: Column, record: RunRecord | None) -> tuple[float, float] | None:
    """Our 95% confidence interval of a one-metric cell, where metrics.json has one."""
    found = record.ci95.get(column.metric[0]) if record is not None and len(column.metric) == 1 else None
    return (found[0], found[1]) if found else None


def outside(theirs: float, interval: tuple[float, float] | None) -> bool:
    """Whether a published value lies outside our interval by more than its own rounding (half a unit of
    its last decimal as the JSON file has it: 1567.4 stands for 1567.35 to 1567.45, 62 for 61.5 to 62.5)."""
    if interval is None:
        return False
    printed = repr(theirs)
    decimals = len(printed.partition(".")[2]) if isinstance(theirs, float) and "e" not in printed else 0
    half = 0.5 * 10.0**-decimals
    return theirs + half < interval[0] or theirs - half > interval[1]


def _identity(layout: Layout, folder: str, model: str) -> tuple[dict[str, str], str | None]:
    """The identity cells of a model (from its config) and the key of its published row."""
    from evalkit.models import list_configs

    config: dict[str, Any] = {}
    configs = list_configs()
    for name in (folder.split("@")[0], model):
        if name in configs:
            config = yaml.safe_load(configs[name].read_text(encoding="utf-8")) or {}
            break
    name = str(config.get("display_name") or folder)
    checkpoint = str(config.get("checkpoint") or model)
    if "/" in checkpoint and not Path(checkpoint).exists():  # a hub id: link it, as the cards do
        checkpoint = f"[{checkpoint.split('/')[-1]}](https://huggingface.co/{checkpoint})"
    cells = {"Name": name, "Model": name, "LLM": str(config.get("llm") or MISSING), "Checkpoint": checkpoint}
    return {k: cells.get(k, MISSING) for k in layout.identity}, config.get("published")


def zoo_rows(results: Path, layout: Layout, compare: bool = False) -> list[dict[str, str]]:
    """The rows (header -> cell text): one per model folder with results under the layout's protocol; with
    `compare`, the published numbers beside ours (`OUTSIDE` marks a difference beyond our interval)."""
    by_folder: dict[str, dict[str, RunRecord]] = {}
    for path, record in iter_run_records(results):
        if record.protocol == layout.protocol:
            by_folder.setdefault(path.parent.parent.name, {})[record.task] = record
    if not by_folder:
        raise InputError(
            f"{results}: no results made under protocol {layout.protocol} (the {layout.name} layout's)"
        )
    reference = published(layout.published)["rows"] if compare and layout.published else {}
    rows = []
    for folder, records in sorted(by_folder.items()):
        first = next(iter(records.values()))
        row, key = _identity(layout, folder, first.model)
        if any(r.generation.get("blank_images") for r in records.values()):  # an ablation, not the model
            for k in ("Name", "Model"):  # a config's display name is told apart; "+blank" in a name says it
                if k in row and "+blank" not in row[k]:
                    row[k] = f"{row[k]} (blank images)"
            key = None  # never set beside the paper's numbers
        theirs = reference.get(key, {}).get("values", {}) if key else {}
        for column in layout.columns:
            record = records.get(column.task)
            text, ours = _cell(column, record)
            limited = record is not None and record.limit is not None and text != MISSING
            if compare and column.header in theirs and not limited:
                text = _beside(text, ours, theirs[column.header], column.decimals, _interval(column, record))
            row[column.header] = text + LIMITED if limited else text
        rows.append(row)
    return rows


def _beside(
    text: str, ours: float | None, theirs: float | str, decimals: int, interval: tuple[float, float] | None
) -> str:
    if ours is None or isinstance(theirs, str):
        return f"{text} ({theirs})"
    mark = OUTSIDE if outside(theirs, interval) else ""
    return f"{text} ({theirs:.{decimals}f}, {ours - theirs:+.{decimals}f}{mark})"


def render_zoo(results: Path, name: str, fmt_name: str, compare: bool = False) -> str:
    import pandas as pd

    layout = get_layout(name)
    rows = zoo_rows(results, layout, compare)
    frame = pd.DataFrame(rows, columns=[*layout.identity, *(c.header for c in layout.columns)])
    cells = [row[c.header] for row in rows for c in layout.columns]
    notes = [OUTSIDE_NOTE] if compare and any(c.endswith(f"{OUTSIDE})") for c in cells) else []
    notes += [LIMITED_NOTE] if any(c.endswith(LIMITED) for c in cells) else []
    if fmt_name == "csv":
        return frame.to_csv(index=False)
    if fmt_name == "html":
        from evalkit.reports.table import to_html

        return to_html(frame, " ".join(notes))
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n" + "".join(f"\n{note}\n" for note in notes)
