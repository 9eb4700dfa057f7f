"""Re-scoring a predictions file without a model: evalkit's own records, or LLaVA answer files.

Our records carry the target and metadata, so they re-score with no data at hand. A LLaVA answers file
(`{"question_id", "prompt", "text"}` lines from model_vqa_loader) is matched to the task's samples,
which needs `--data-root`; ids shared by several questions (MME pairs) are told apart by the prompt.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

from evalkit import stages
from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.protocols import Protocol, get_protocol
from evalkit.records import (
    MANIFEST,
    METRICS,
    PREDICTIONS,
    DataInfo,
    Manifest,
    Prediction,
    RunRecord,
    atomic_write,
    read_predictions,
    read_run_record,
    rewrite_predictions,
)
from evalkit.scoring.judge import Judge
from evalkit.stages import make_prediction
from evalkit.task import Task


def sniff_format(path: Path) -> str:
    """'evalkit' or 'llava', from the first non-blank line."""
    from evalkit.data.readers import read_text_lines

    if not path.is_file():
        raise InputError(f"predictions file not found: {path}")
    first = next((line for _, line in read_text_lines(path) if line.strip()), "")
    try:
        obj = json.loads(first) if first else {}
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:1: malformed JSON line ({exc.msg})") from exc
    if isinstance(obj, dict) and {"id", "output", "meta"} <= obj.keys():
        return "evalkit"
    if isinstance(obj, dict) and {"question_id", "text"} <= obj.keys():
        return "llava"
    raise InputError(f"{path}:1: neither evalkit records nor LLaVA answers (question_id + text)")


def rescore_records(
    task: Task,
    protocol: Protocol,
    records: list[Prediction],
    path: Path | None = None,
    judge: str | None = None,
    matcher: bool = False,
) -> list[Prediction]:
    """Records scored again (`stages.score`); each id once, each record of this task."""
    seen: set[str] = set()
    where = f"{path}: " if path else ""
    for number, p in enumerate(records, 1):
        if p.id in seen:
            raise InputError(f"{where}record {number}: id {p.id!r} appears twice (one record per sample)")
        seen.add(p.id)
    try:
        return stages.score(task, protocol, records, judge, matcher)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # metadata another task wrote
        raise InputError(
            f"{where}these records are not {task.name} records (their metadata lacks {exc}); "
            "give the --task their run was made for"
        ) from None


def _prompt(task: Task, protocol: str, sample: Sample) -> str:
    prompt = task.variant(protocol).prompt
    assert prompt is not None  # Task.variant resolves every field
    return prompt(sample)


def _index(samples: list[Sample]) -> dict[str, list[Sample]]:
    """Samples by id, and by the id's base where ids carry a `#k` suffix (several questions per image)."""
    by_key: dict[str, list[Sample]] = {}
    for s in samples:
        by_key.setdefault(s.id, []).append(s)
        if "#" in s.id:
            by_key.setdefault(s.id.rsplit("#", 1)[0], []).append(s)
    return by_key


def rescore_llava(task: Task, protocol: Protocol, path: Path, samples: list[Sample]) -> list[Prediction]:
    from evalkit.data.readers import ID, TEXT, read_json_lines, require_fields

    variant = task.variant(protocol.name)
    by_key = _index(samples)
    out: dict[str, Prediction] = {}
    for number, obj in read_json_lines(path):
        require_fields(obj, f"{path}:{number}", {"question_id": ID, "text": TEXT})
        qid = str(obj["question_id"])
        key = qid if qid in by_key else (task.external_id(qid) if task.external_id else qid)
        candidates = by_key.get(key, [])
        if len(candidates) > 1:  # told apart by the prompt, as any protocol of the task renders it
            prompt = str(obj.get("prompt", ""))
            candidates = [s for s in candidates if any(_prompt(task, p, s) == prompt for p in task.protocols)]
        if len(candidates) != 1:
            raise InputError(
                f"{path}:{number}: question_id {qid!r} matches {len(candidates)} samples of {task.name}"
            )
        sample = candidates[0]
        if sample.id in out:
            raise InputError(f"{path}:{number}: a second answer for sample {sample.id!r}")
        out[sample.id] = make_prediction(
            task, variant, protocol, sample, str(obj.get("prompt", "")), obj["text"]
        )
    return list(out.values())


@dataclass(frozen=True)
class Rescored:
    task: Task
    protocol: Protocol
    source: Path
    predictions: list[Prediction]
    metrics: dict[str, float]
    record: RunRecord  # what `write_rescored` writes as metrics.json

    @property
    def primary(self) -> str:
        return self.task.primary_for(self.protocol.name)


def run_manifest(path: Path) -> Manifest | None:
    """The manifest of the run a predictions file belongs to (beside it), if any."""
    manifest = path.parent / MANIFEST
    if not manifest.exists():
        return None
    try:
        return Manifest.model_validate_json(manifest.read_bytes())
    except ValueError as exc:
        raise InputError(f"{manifest}: not an evalkit manifest ({exc.__class__.__name__})") from None


def default_protocol(path: Path) -> str:
    """The protocol recorded beside an evalkit predictions file (its run's manifest), else llava."""
    manifest = run_manifest(path)
    return manifest.protocol if manifest is not None else "llava"


def rescore_file(
    task: Task,
    path: Path,
    protocol: str | None,
    data_root: Path | None,
    judge: Judge | None = None,
    matcher: bool = False,
    strip_reasoning: bool | None = None,
) -> Rescored:
    manifest = run_manifest(path) if sniff_format(path) == "evalkit" else None
    if manifest is not None and manifest.task != task.name:
        raise InputError(f"{path}: these are {manifest.task} records (its manifest.json), not {task.name}")
    chosen = get_protocol(protocol or default_protocol(path))
    if strip_reasoning is None and manifest and manifest.replies and manifest.protocol == chosen.name:
        # as the run processed its replies (its own --strip-reasoning / --keep-reasoning)
        recorded = manifest.replies["reasoning_tags"]
        chosen = replace(chosen, reasoning_tags=tuple((str(a), str(b)) for a, b in recorded))
    chosen = chosen.with_reasoning(strip_reasoning)
    started, clock = stages.now(), stages.clock()
    dataset = task.load(data_root / task.folder) if data_root is not None else None
    judge_model = judge.model if judge is not None else None
    predictions = load_and_rescore(
        task, chosen, path, dataset.samples if dataset else None, judge_model, matcher
    )
    judged = stages.judge(task, chosen, predictions, judge, matcher)
    metrics = stages.aggregate(task, chosen, judged.records, str(path))
    provenance = stages.Provenance(
        model=manifest.model if manifest else "unknown",
        model_config=(manifest.backend_info or manifest.model_settings) if manifest else {},
        generation=manifest.generation if manifest else {},
        data=DataInfo(
            path=str(dataset.path) if dataset else str(path),
            format=dataset.format if dataset else "records",
            fingerprint=dataset.fingerprint if dataset else (manifest.data_fingerprint if manifest else ""),
        ),
        started=started,
        seconds=stages.clock() - clock,
        source=str(path),
    )
    record = stages.run_record(task, chosen, judged.records, metrics, provenance, judged.info)
    if manifest is not None and (run := path.parent / METRICS).is_file():  # a --limit run stays marked
        with contextlib.suppress(InputError):
            record = record.model_copy(update={"limit": read_run_record(run).limit})
    return Rescored(task, chosen, path, judged.records, metrics, record)


def write_rescored(result: Rescored, output: Path) -> None:
    """`predictions.jsonl` (the re-scored records) and `metrics.json`, the schema `evalkit run` writes, with
    `source` naming the file re-scored."""
    output.mkdir(parents=True, exist_ok=True)
    rewrite_predictions(output / PREDICTIONS, result.predictions)
    atomic_write(output / METRICS, result.record.dump())


def load_and_rescore(
    task: Task,
    protocol: Protocol,
    path: Path,
    samples: list[Sample] | None,
    judge: str | None = None,
    matcher: bool = False,
) -> list[Prediction]:
    if sniff_format(path) == "evalkit":
        return rescore_records(task, protocol, read_predictions(path), path, judge, matcher)
    if samples is None:
        raise InputError(
            f"{path}: LLaVA answer files carry no targets; give --data-root to match the task data"
        )
    return rescore_llava(task, protocol, path, samples)
