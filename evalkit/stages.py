"""The stages after generation, shared by `evalkit run` and `evalkit score`:

    generate -> score -> judge -> aggregate -> write

`score` reads each record's raw reply again with the protocol's current rules (so a fixed rule reaches a
finished run without regenerating anything), keeping the judge's grades and the matcher's verdicts of an
unchanged reply; `judge` grades what is pending (judged tasks) or matches what no rule could read (with
`--judge-matcher`); `aggregate` gives the task's metrics plus the standard counts; `run_record` is the
metrics.json both commands write (a run's provenance, or the file a re-score read), with `intervals`: the
metrics' 95% confidence intervals by a seeded bootstrap over the task's independent units.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import evalkit
from evalkit.backends.base import Failure
from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.judging import MATCHED, MATCHED_NONE, judge_records, match_unparsed
from evalkit.judging import pending as pending_grades
from evalkit.protocols import Protocol
from evalkit.records import REPAIRED, DataInfo, Prediction, RunRecord, State, clean_text
from evalkit.scoring import bootstrap
from evalkit.scoring.judge import Judge
from evalkit.task import Task, Variant

log = logging.getLogger(__name__)
# what a record's own run added to its meta (targets, grades, the judge's reply): made again, not carried
DERIVED_META = ("target", "question", "grade", "judge", "matcher")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_sha() -> str | None:
    """The evalkit source commit, when running from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(evalkit.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def make_prediction(
    task: Task, variant: Variant, protocol: Protocol, sample: Sample, prompt: str, output: str | Failure
) -> Prediction:
    """Score one outcome into a record; a failure is a wrong answer that carries its reason."""
    meta = task.sample_meta(sample)
    if isinstance(output, Failure):
        return Prediction(
            id=sample.id, prompt=prompt, output="", answer=None, score=0.0, parse="failed", meta=meta,
            error=output.reason,
        )  # fmt: skip
    output, surrogates = clean_text(output)
    if surrogates:  # a reply UTF-8 cannot hold ("\ud83d"): kept with U+FFFD, and the record says so
        meta[REPAIRED] = ["output"]
    assert variant.score is not None  # Task.variant resolves every field
    scored = variant.score(protocol.process(output), sample)
    return Prediction(
        id=sample.id, prompt=prompt, output=output, answer=scored.answer, score=scored.score,
        parse=scored.parse, meta=meta,
    )  # fmt: skip


def sample_of(record: Prediction) -> Sample:
    """The sample a record was made from, as far as scoring needs it (its target and metadata)."""
    if "target" not in record.meta:
        raise InputError(f"record {record.id!r} has no target in meta; re-score it with --data-root instead")
    meta = {k: v for k, v in record.meta.items() if k not in DERIVED_META and k != REPAIRED}
    question = str(record.meta.get("question", ""))
    return Sample(id=record.id, images=(), question=question, target=str(record.meta["target"]), meta=meta)


def _by(record: Prediction, key: str) -> str | None:
    note = record.meta.get(key)
    return str(note.get("model")) if isinstance(note, dict) else None


def score(
    task: Task, protocol: Protocol, records: list[Prediction], judge: str | None = None, matcher: bool = False
) -> list[Prediction]:
    """Every record scored again from its raw reply with the protocol's rules. Failed records stay failed
    (the next run retries them). A grade stays with the reply it was given for while `judge` (the judge
    model now) is the one that gave it; a matcher verdict likewise, and only while `matcher` is on."""
    variant = task.variant(protocol.name)
    out: list[Prediction] = []
    for old in records:
        if old.failed:
            out.append(old)
            continue
        graded = old.state in (State.SCORED, State.JUDGE_FAILURE)
        if task.judged is not None and graded and judge is not None and _by(old, "judge") == judge:
            out.append(old)  # graded by this judge: the grade belongs to this very reply
            continue
        new = make_prediction(task, variant, protocol, sample_of(old), old.prompt, old.output)
        if REPAIRED in old.meta:
            new = new.model_copy(update={"meta": new.meta | {REPAIRED: old.meta[REPAIRED]}})
        kept_match = matcher and judge is not None and _by(old, "matcher") == judge
        if new.state == State.UNPARSED and kept_match and old.parse in (MATCHED, MATCHED_NONE):
            out.append(old)  # the rules still cannot read it: the judge's match stands
            continue
        out.append(new)
    return out


@dataclass(frozen=True)
class Judged:
    records: list[Prediction]
    info: dict[str, Any] | None  # what metrics.json records of the judge (None: no judge took part)


def judge(
    task: Task, protocol: Protocol, records: list[Prediction], judge: Judge | None, matcher: bool
) -> Judged:
    """Grades for a judged task's pending records; with `matcher`, the judge's match for replies no rule of
    a rule-scored task could read. The judge sees each reply as the protocol's parsers do."""
    if judge is None or (task.judged is None and not matcher):
        return Judged(records, None)
    if task.judged is not None:
        records = judge_records(task, records, judge, protocol.process)
    else:
        records = match_unparsed(records, judge, task.kind, protocol.process)
    graders = sorted({str(p.meta[k]["model"]) for p in records for k in ("judge", "matcher") if k in p.meta})
    info = judge.config.describe() | {
        "usage": judge.usage().as_dict(),
        "pending": pending_grades(records),
        "matcher": matcher and task.judged is None,
        "matched": sum(p.parse in (MATCHED, MATCHED_NONE) for p in records),
        "graded_by": graders,  # every judge model whose verdicts these records hold
    }
    return Judged(records, info)


def aggregate(task: Task, protocol: Protocol, records: list[Prediction], where: str = "") -> dict[str, float]:
    """The task's metrics under the protocol, standard counts included."""
    try:
        return task.aggregate_for(protocol.name)(records)
    except KeyError as exc:  # metadata another task's records lack
        raise InputError(
            f"{where or 'records'}: these are not {task.name} records (their metadata lacks {exc}); give the "
            "--task their run was made for"
        ) from None


def intervals(
    task: Task, protocol: Protocol, records: list[Prediction], metrics: dict[str, float], where: str = ""
) -> tuple[dict[str, list[float]], dict[str, Any] | None]:
    """metrics.json's `ci95` ({metric: [low, high]}, every metric but the counts) and `ci` (how they were
    made); nothing for a split without answers."""
    unit = task.unit_for(protocol.name)
    try:
        found = bootstrap.ci95(records, task.benchmark_for(protocol.name), unit, expected=metrics)
    except Exception as exc:  # e.g. a unit field these records lack: the metrics are written all the same
        log.warning("%s: no confidence intervals (%s: %s)", where or task.name, type(exc).__name__, exc)
        return {}, None
    if not found:
        return {}, None
    how = {"method": "percentile bootstrap", "resamples": bootstrap.RESAMPLES, "seed": bootstrap.SEED}
    return {k: [low, high] for k, (low, high) in found.items()}, how | unit.describe()


@dataclass(frozen=True)
class Provenance:
    """Where records came from: a run (model, settings, timings) or a file re-scored (`source`)."""

    model: str
    model_config: dict[str, Any]
    generation: dict[str, Any]
    data: DataInfo
    started: str
    seconds: float = 0.0
    generated: int = 0  # samples generated by this run (for samples/s)
    source: str | None = None


def run_record(
    task: Task, protocol: Protocol, records: list[Prediction], metrics: dict[str, float],
    provenance: Provenance, judge_info: dict[str, Any] | None,
) -> RunRecord:  # fmt: skip
    """metrics.json: the same schema for a run and a re-score."""
    p = provenance
    rate = round(p.generated / p.seconds, 3) if p.generated and p.seconds else 0.0
    ci95, ci = intervals(task, protocol, records, metrics, p.source or "")
    return RunRecord(
        task=task.name, task_version=task.version, protocol=protocol.name, model=p.model,
        model_config=p.model_config, generation=p.generation, evalkit_version=evalkit.__version__,
        git_sha=git_sha(), data=p.data, n=len(records), started=p.started, finished=now(),
        seconds=round(p.seconds, 3), samples_per_second=rate, metrics=metrics,
        primary=task.primary_for(protocol.name), judge=judge_info, replies=protocol.output_settings(),
        source=p.source, ci95=ci95, ci=ci,
    )  # fmt: skip


def clock() -> float:
    return time.perf_counter()
