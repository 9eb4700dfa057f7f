"""`evalkit report`: one self-contained HTML page from a results folder, which opens offline and requests
nothing (inline CSS, a few lines of inline JS, charts and thumbnails as data URIs; a Content-Security-Policy
forbids anything else): the leaderboard, per task a chart by category, and per run its provenance and a
sample browser filterable to wrong / unparsed / failed records. Every text from records is escaped (the
template autoescapes): model outputs are untrusted.

A run with more records than `samples` embeds that many, its failed, unparsed and wrong ones first.
The filter a page opens with can be given in its address: `report.html#filter=wrong`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalkit.fs import atomic_write
from evalkit.records import PREDICTIONS, Prediction, RunRecord, iter_run_records, read_predictions
from evalkit.reports.charts import category_chart
from evalkit.reports.samples import PRIORITY, Outcome, counts, outcome, scored, select
from evalkit.reports.table import LIMITED, LIMITED_NOTE, collect, fmt, wide
from evalkit.reports.thumbnails import Thumb, Thumbnails

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEXT_LIMIT = 4000  # characters of a prompt or output embedded; the rest is cut, and the page says how much
FILTERS = (Outcome.WRONG, Outcome.UNPARSED, Outcome.FAILED)  # offered (wrong: if scored); others when present


@dataclass(frozen=True)
class Cell:
    text: str
    ci: str | None = None  # "[low, high]" of a 95% interval, when the record has one


@dataclass(frozen=True)
class Row:
    """One embedded record."""

    id: str
    prompt: str
    output: str
    answer: str | None
    target: str | None
    score: float
    parse: str
    error: str | None
    outcome: Outcome
    thumb: Thumb


@dataclass(frozen=True)
class Run:
    """One model's results on one task."""

    anchor: str
    model: str  # the model folder's name
    provenance: list[tuple[str, str]]
    settings: list[tuple[str, str]]  # every model setting the run recorded
    counts: dict[Outcome, int]  # over all the run's records
    total: int
    rows: list[Row]
    filters: list[tuple[Outcome, int]]  # the filter buttons: outcome and embedded rows with it
    image_note: str | None
    keyed: bool  # whether the run was scored (its metrics hold its primary); False: no answer key


@dataclass(frozen=True)
class TaskSection:
    name: str
    anchor: str
    chart: str | None  # a PNG data URI; runs without their primary metric (no answer key) are left out
    runs: list[Run]


def write_report(results: Path, out: Path, data_root: Path | None = None, samples: int = 200) -> Path:
    """Write the report page for every `<model>/<task>/metrics.json` under `results` to `out`."""
    import evalkit

    header, board = leaderboard(results)
    thumbnails = Thumbnails(data_root)
    tasks = task_sections(results, thumbnails, samples)
    template = _environment().get_template("report.html.j2")
    page = template.render(
        title=f"evalkit report: {results.resolve().name}",
        results=str(results),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=evalkit.__version__,
        header=header,
        board=board,
        limited_note=LIMITED_NOTE if any(LIMITED in c.text for row in board for c in row) else None,
        tasks=tasks,
        samples=samples,
        thumbnail_css=thumbnails.css(),
    )
    atomic_write(out, page)
    return out


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def leaderboard(results: Path) -> tuple[list[str], list[list[Cell]]]:
    """The wide table (`evalkit table`'s: models x tasks, primary metric), each cell with its CI if any."""
    frame = collect(results)
    table = wide(frame)
    tasks = sorted(frame[frame["primary"]]["task"].unique())  # the pivot's column order
    intervals = {
        (path.parent.parent.name, record.task): _interval(record, record.primary)
        for path, record in iter_run_records(results)
    }
    rows = []
    for values in table.itertuples(index=False):
        model, *cells = values
        rows.append(
            [Cell(str(model))]
            + [Cell(fmt(v), intervals.get((str(model), t))) for v, t in zip(cells, tasks, strict=True)]
        )
    return [str(c) for c in table.columns], rows


def _interval(record: RunRecord, metric: str) -> str | None:
    """The record's 95% interval of `metric` as text; records made before intervals were kept have none."""
    found = (getattr(record, "ci95", None) or {}).get(metric)
    return f"[{found[0]:.2f}, {found[1]:.2f}]" if found and len(found) == 2 else None


def task_sections(results: Path, thumbnails: Thumbnails, samples: int) -> list[TaskSection]:
    by_task: dict[str, list[tuple[Path, RunRecord]]] = {}
    for path, record in iter_run_records(results):
        by_task.setdefault(record.task, []).append((path, record))
    sections = []
    for n, (task, runs) in enumerate(sorted(by_task.items())):
        records = {path: read_predictions(path.parent / PREDICTIONS) for path, _ in runs}
        views = [
            _run(f"run-{n}-{i}", path, record, records[path], thumbnails, samples)
            for i, (path, record) in enumerate(runs)
        ]
        charted = {path.parent.parent.name: records[path] for path, record in runs if scored(record)}
        chart = category_chart(task, charted) if charted else None
        sections.append(TaskSection(task, f"task-{_anchor(task)}", chart, views))
    return sections


def _anchor(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _run(
    anchor: str, path: Path, record: RunRecord, records: list[Prediction], thumbnails: Thumbnails, cap: int
) -> Run:
    source = thumbnails.source(record)
    keyed = scored(record)
    chosen = select(records, cap, keyed)
    rows = [
        Row(
            id=p.id,
            prompt=_cut(p.prompt),
            output=_cut(p.output),
            answer=p.answer,
            target=str(p.meta["target"]) if keyed and p.meta.get("target") not in (None, "") else None,
            score=p.score,
            parse=p.parse,
            error=p.error,
            outcome=outcome(p, keyed),
            thumb=thumbnails.thumb(source, p.id),
        )
        for p in chosen
    ]
    shown = counts(chosen, keyed)
    offered = FILTERS if keyed else tuple(o for o in FILTERS if o is not Outcome.WRONG)
    filters = [(o, shown[o]) for o in PRIORITY if o in offered or shown[o]]
    return Run(
        anchor=anchor,
        model=path.parent.parent.name,
        provenance=provenance(record),
        settings=[(k, _text(v)) for k, v in sorted(record.model_cfg.items())],
        counts=counts(records, keyed),
        keyed=keyed,
        total=len(records),
        rows=rows,
        filters=filters,
        image_note=source.problem or source.note,
    )


def _cut(text: str) -> str:
    if len(text) <= TEXT_LIMIT:
        return text
    return f"{text[:TEXT_LIMIT]}\n[... {len(text) - TEXT_LIMIT} more characters not shown]"


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def provenance(record: RunRecord) -> list[tuple[str, str]]:
    """What the run was: protocol, model and how it is identified, evalkit, data, settings, judge, CIs."""
    cfg = record.model_cfg
    items: list[tuple[str, object]] = [
        ("protocol", record.protocol),
        ("task version", record.task_version),
        ("model", record.model),
        ("backend", cfg.get("backend")),
        ("checkpoint", cfg.get("checkpoint")),
        ("revision", cfg.get("revision")),
        ("commit", cfg.get("commit")),
        ("weights fingerprint", cfg.get("content")),
        ("evalkit", record.evalkit_version + (f" (git {record.git_sha})" if record.git_sha else "")),
        ("data", f"{record.data.path} ({record.data.format}, {record.data.fingerprint})"),
        ("samples", _samples(record)),
        ("generation", record.generation),
        ("replies", record.replies),
        ("re-scored from", record.source),
        ("judge", _judge(record.judge)),
        ("95% intervals", _intervals(record)),
    ]
    ci_fields = {k for k in type(record).model_fields if k.startswith("ci") and k != "ci95"}
    extra = record.model_dump(include=ci_fields)  # how the intervals were made (`ci`), where recorded
    items += [
        ("intervals made by" if k == "ci" else k.replace("_", " "), v) for k, v in sorted(extra.items())
    ]
    seconds = f"{record.seconds:.1f} s, {record.samples_per_second:.2f} samples/s"
    items.append(("time", f"{record.started} to {record.finished}: {seconds}"))
    return [(k, _text(v)) for k, v in items if v not in (None, "", {}, [])]


def _samples(record: RunRecord) -> str:
    text = str(record.n)
    if record.data.samples is not None:
        text += f" of {record.data.samples}"
    if record.limit is not None:
        text += f" (a --limit {record.limit} run: not the benchmark's number)"
    return text


def _judge(judge: dict[str, Any] | None) -> str | None:
    if not judge:
        return None
    usage = judge.get("usage") or {}
    cost = usage.get("cost_usd")
    parts = [
        str(judge.get("model", "?")) + (f" at {judge['base_url']}" if judge.get("base_url") else ""),
        f"{usage.get('calls', 0)} calls, {usage.get('cache_hits', 0)} cached, "
        f"{usage.get('prompt_tokens', 0)}+{usage.get('completion_tokens', 0)} tokens",
        f"cost ${cost:.4f}" if isinstance(cost, int | float) else "cost not priced",
        f"{judge['pending']} grades pending" if judge.get("pending") else "",
        f"matcher: {judge.get('matched', 0)} replies matched" if judge.get("matcher") else "",
    ]
    return "; ".join(p for p in parts if p)


def _intervals(record: RunRecord) -> str | None:
    found = getattr(record, "ci95", None) or {}
    return ", ".join(f"{k} [{v[0]:.2f}, {v[1]:.2f}]" for k, v in sorted(found.items()) if len(v) == 2) or None
