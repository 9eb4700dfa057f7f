"""Re-scoring a predictions file without a model: evalkit's own records, or LLaVA answer files.

Our records carry the target and metadata, so they re-score with no data at hand. A LLaVA answers file
(`{"question_id", "prompt", "text"}` lines from model_vqa_loader) is matched to the task's samples,
which needs `--data-root`; ids shared by several questions (MME pairs) are told apart by the prompt.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.protocols import Protocol
from evalkit.records import Prediction, read_predictions
from evalkit.runner import make_prediction
from evalkit.task import Task


def sniff_format(path: Path) -> str:
    """'evalkit' or 'llava', from the first non-blank line."""
    try:
        with path.open(encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), "")
    except FileNotFoundError as exc:
        raise InputError(f"predictions file not found: {path}") from exc
    try:
        obj = json.loads(first) if first else {}
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:1: malformed JSON line ({exc.msg})") from exc
    if {"id", "output", "meta"} <= obj.keys():
        return "evalkit"
    if {"question_id", "text"} <= obj.keys():
        return "llava"
    raise InputError(f"{path}:1: neither evalkit records nor LLaVA answers (question_id + text)")


def _sample_from_record(p: Prediction) -> Sample:
    meta = {k: v for k, v in p.meta.items() if k not in ("target", "question")}
    return Sample(
        id=p.id, images=(), question=str(p.meta.get("question", "")), target=str(p.meta["target"]), meta=meta
    )


def rescore_records(task: Task, protocol: Protocol, records: list[Prediction]) -> list[Prediction]:
    variant = task.variant(protocol.name)
    out: list[Prediction] = []
    for p in records:
        if p.failed:
            out.append(p)
            continue
        if "target" not in p.meta:
            raise InputError(f"record {p.id!r} has no target in meta; re-score it with --data-root instead")
        out.append(make_prediction(task, variant, protocol, _sample_from_record(p), p.prompt, p.output))
    return out


def _index(samples: list[Sample]) -> dict[str, list[Sample]]:
    """Samples by id, and by the id's base where ids carry a `#k` suffix (several questions per image)."""
    by_key: dict[str, list[Sample]] = {}
    for s in samples:
        by_key.setdefault(s.id, []).append(s)
        if "#" in s.id:
            by_key.setdefault(s.id.rsplit("#", 1)[0], []).append(s)
    return by_key


def rescore_llava(task: Task, protocol: Protocol, path: Path, samples: list[Sample]) -> list[Prediction]:
    from evalkit.data.readers import read_json_lines

    variant = task.variant(protocol.name)
    by_key = _index(samples)
    out: dict[str, Prediction] = {}
    for number, obj in read_json_lines(path):
        if "question_id" not in obj or "text" not in obj:
            raise InputError(f"{path}:{number}: a LLaVA answer needs question_id and text")
        qid = str(obj["question_id"])
        key = qid if qid in by_key else (task.external_id(qid) if task.external_id else qid)
        candidates = by_key.get(key, [])
        if len(candidates) > 1:  # told apart by the prompt, as any protocol of the task renders it
            prompt = str(obj.get("prompt", ""))
            candidates = [s for s in candidates if any(v.prompt(s) == prompt for v in task.variants.values())]
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


def load_and_rescore(
    task: Task, protocol: Protocol, path: Path, samples: list[Sample] | None
) -> list[Prediction]:
    if sniff_format(path) == "evalkit":
        return rescore_records(task, protocol, read_predictions(path))
    if samples is None:
        raise InputError(
            f"{path}: LLaVA answer files carry no targets; give --data-root to match the task data"
        )
    return rescore_llava(task, protocol, path, samples)
