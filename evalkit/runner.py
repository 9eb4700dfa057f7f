"""The greedy runner: samples -> batches -> backend.generate -> scored records, resumable.

Per task: read the samples, skip ids already in `predictions.jsonl` (failed ones are dropped from the
file and retried), run the rest in length-sorted batches while the next batch's images are decoded
and preprocessed in a worker thread, append each batch's records durably, then aggregate every record
into `metrics.json`. A task whose predictions are complete never touches the backend, so the model is
only loaded when some task has work.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

import evalkit
from evalkit.backends.base import Backend, Failure, Request
from evalkit.data.images import ImageError, expand_to_square, load_image
from evalkit.data.readers import Dataset, Sample
from evalkit.distributed import SINGLE, World
from evalkit.errors import ConfigError
from evalkit.protocols import Protocol
from evalkit.records import (
    MANIFEST,
    METRICS,
    PREDICTIONS,
    DataInfo,
    Manifest,
    Prediction,
    PredictionWriter,
    RunRecord,
    atomic_write,
    read_predictions,
    read_run_record,
    rewrite_predictions,
)
from evalkit.task import Task, Variant

Progress = Callable[[str, int, int], None]  # (task, done, total)


class LazyBackend:
    """Builds the backend on first use, so finished tasks never load a model."""

    def __init__(self, factory: Callable[[], Backend], batch_size: int | None = None) -> None:
        self._factory = factory
        self._backend: Backend | None = None
        self.batch_size = batch_size

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def get(self) -> Backend:
        if self._backend is None:
            self._backend = self._factory()
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


@dataclass(frozen=True)
class RunSettings:
    name: str  # results folder name
    model: str  # what the user asked for (config name, path, openai:<id>)
    protocol: Protocol
    data_root: Path
    output: Path
    limit: int | None = None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_sha() -> str | None:
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
    return out.stdout.strip() or None if out.returncode == 0 else None


def select(dataset: Dataset, limit: int | None) -> list[Sample]:
    samples = dataset.samples if limit is None else dataset.samples[:limit]
    seen: set[str] = set()
    for s in samples:
        if s.id in seen:
            raise ConfigError(f"{dataset.path}: duplicate sample id {s.id!r}")
        seen.add(s.id)
    return samples


def prepare_output(protocol: Protocol, output: str) -> str:
    return output.strip() if protocol.strip_output else output


def make_prediction(
    task: Task, variant: Variant, protocol: Protocol, sample: Sample, prompt: str, output: str | Failure
) -> Prediction:
    """Score one outcome into a record; a failure is a wrong answer that carries its reason."""
    meta = task.sample_meta(sample)
    if isinstance(output, Failure):
        return Prediction(
            id=sample.id,
            prompt=prompt,
            output="",
            answer=None,
            score=0.0,
            parse="failed",
            meta=meta,
            error=output.reason,
        )
    scored = variant.score(prepare_output(protocol, output), sample)
    return Prediction(
        id=sample.id,
        prompt=prompt,
        output=output,
        answer=scored.answer,
        score=scored.score,
        parse=scored.parse,
        meta=meta,
    )


def _load_images(sample: Sample, mode: str, pad: tuple[int, int, int]) -> list[Image.Image]:
    if sample.error:
        raise ImageError(sample.error)
    images = [load_image(ref) for ref in sample.images]
    return [expand_to_square(img, pad) for img in images] if mode == "pad" else images


@dataclass
class _Batch:
    samples: list[Sample]
    prompts: dict[str, str]
    failures: dict[str, Failure]
    requests: list[Request]
    prepared: Any


class _Pipeline:
    """Prepares batch i+1 (image decoding, backend.prepare) while batch i generates."""

    def __init__(self, backend: Backend, variant: Variant, template: str | None) -> None:
        self.backend = backend
        self.variant = variant
        self.template = template
        self.images = ThreadPoolExecutor(max_workers=4, thread_name_prefix="evalkit-images")
        self.ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-prepare")

    def _prepare(self, samples: list[Sample]) -> _Batch:
        prompts = {s.id: self.variant.prompt(s) for s in samples}
        pad = self.backend.pad_colour
        mode = self.backend.image_mode(self.variant.image_mode)
        loaded = list(self.images.map(lambda s: _try_images(s, mode, pad), samples))
        failures = {s.id: r for s, r in zip(samples, loaded, strict=True) if isinstance(r, Failure)}
        requests = [
            Request(
                id=s.id,
                images=r,
                prompt=prompts[s.id],
                max_new_tokens=self.variant.max_new_tokens,
                template=self.template,
            )
            for s, r in zip(samples, loaded, strict=True)
            if not isinstance(r, Failure)
        ]
        prepared = self.backend.prepare(requests) if requests else None
        return _Batch(samples, prompts, failures, requests, prepared)

    def run(self, batches: list[list[Sample]]) -> Iterator[tuple[_Batch, list[str | Failure]]]:
        try:
            future: Future[_Batch] | None = self.ahead.submit(self._prepare, batches[0]) if batches else None
            for i in range(len(batches)):
                assert future is not None
                batch = future.result()
                future = self.ahead.submit(self._prepare, batches[i + 1]) if i + 1 < len(batches) else None
                outputs = self.backend.generate(batch.prepared) if batch.requests else []
                if len(outputs) != len(batch.requests):
                    raise RuntimeError(
                        f"backend returned {len(outputs)} outputs for {len(batch.requests)} requests"
                    )
                yield batch, outputs
        finally:
            self.ahead.shutdown(wait=True, cancel_futures=True)
            self.images.shutdown(wait=True, cancel_futures=True)


def _try_images(sample: Sample, mode: str, pad: tuple[int, int, int]) -> list[Image.Image] | Failure:
    try:
        return _load_images(sample, mode, pad)
    except ImageError as exc:
        return Failure(str(exc))


def _batches(samples: list[Sample], variant: Variant, size: int) -> list[list[Sample]]:
    """Length-sorted batches (little padding); sorting is stable, so the order is deterministic."""
    ordered = sorted(samples, key=lambda s: (len(s.images), len(variant.prompt(s))))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _check_manifest(path: Path, manifest: Manifest) -> None:
    if not path.exists():
        atomic_write(path, manifest.model_dump_json(indent=2) + "\n")
        return
    old = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    for field in ("task_version", "protocol", "generation", "model"):
        if getattr(old, field) != getattr(manifest, field):
            raise ConfigError(
                f"{path.parent}: existing predictions were made with {field}={getattr(old, field)!r}, "
                f"this run has {getattr(manifest, field)!r}; use another --name/--output or remove the folder"
            )


def run_task(
    task: Task,
    settings: RunSettings,
    backend: LazyBackend,
    progress: Progress | None = None,
    world: World = SINGLE,
) -> RunRecord:
    """Run (or finish) one task and write its metrics; returns the run record."""
    protocol = settings.protocol
    variant = task.variant(protocol.name)
    dataset = task.load(settings.data_root / task.folder)
    samples = select(dataset, settings.limit)
    out_dir = settings.output / settings.name / task.name
    out_dir.mkdir(parents=True, exist_ok=True)
    generation = {
        "max_new_tokens": variant.max_new_tokens,
        "do_sample": False,
        "num_beams": 1,
        "temperature": 0.0,
        "template": protocol.template or "model chat template",
        "image_mode": variant.image_mode,
    }
    if world.is_main:
        _check_manifest(
            out_dir / MANIFEST,
            Manifest(
                task=task.name,
                task_version=task.version,
                protocol=protocol.name,
                model=settings.model,
                generation=generation,
            ),
        )
    pred_path = out_dir / PREDICTIONS
    if world.is_main:
        merge_parts(pred_path)  # shards of an earlier data-parallel run
        existing = read_predictions(pred_path, repair=True)
        kept = _dedupe(p for p in existing if not p.failed)
        if len(kept) != len(existing):
            rewrite_predictions(pred_path, kept)  # failed records are retried below
    world.barrier()
    wanted = {s.id for s in samples}
    done = {p.id: p for p in read_predictions(pred_path) if p.id in wanted}
    pending = [s for s in samples if s.id not in done]

    metrics_path = out_dir / METRICS
    if not pending and metrics_path.exists():
        record = read_run_record(metrics_path)
        if record.n == len(samples) and record.data.fingerprint == dataset.fingerprint:
            return record

    started = time.perf_counter()
    if progress:
        progress(task.name, len(done), len(samples))
    mine = world.shard(pending)
    already, written = len(done), 0
    if mine:
        engine = backend.get()
        size = backend.batch_size or engine.default_batch_size
        pipeline = _Pipeline(engine, variant, protocol.template)
        target = pred_path if world.size == 1 else part_path(pred_path, world.rank)
        with PredictionWriter(target) as writer:
            for batch, outputs in pipeline.run(_batches(mine, variant, size)):
                by_id: dict[str, str | Failure] = dict(batch.failures)
                by_id.update({r.id: o for r, o in zip(batch.requests, outputs, strict=True)})
                records = [
                    make_prediction(task, variant, protocol, s, batch.prompts[s.id], by_id[s.id])
                    for s in batch.samples
                ]
                writer.write(records)
                done.update((p.id, p) for p in records)
                written += len(records)
                if progress:  # under data parallelism, rank 0 extrapolates from its own shard
                    progress(task.name, min(len(samples), already + written * world.size), len(samples))
    seconds = time.perf_counter() - started
    world.barrier()
    if not world.is_main:
        world.barrier()  # rank 0 merges the shards and writes the metrics
        return read_run_record(metrics_path)
    if world.size > 1:
        merge_parts(pred_path)
        done = {p.id: p for p in read_predictions(pred_path) if p.id in wanted}
    predictions = [done[s.id] for s in samples]
    record = RunRecord(
        task=task.name,
        task_version=task.version,
        protocol=protocol.name,
        model=settings.model,
        model_config=backend.get().describe() if backend.loaded else {"model": settings.model},
        generation=generation | {"batch_size": backend.batch_size or "backend default"},
        evalkit_version=evalkit.__version__,
        git_sha=git_sha(),
        data=DataInfo(path=str(dataset.path), format=dataset.format, fingerprint=dataset.fingerprint),
        n=len(predictions),
        started=now() if not pending else _iso_ago(seconds),
        finished=now(),
        seconds=round(seconds, 3),
        samples_per_second=round(len(pending) / seconds, 3) if pending and seconds else 0.0,
        metrics=task.aggregate(predictions),
        primary=task.primary,
    )
    atomic_write(metrics_path, record.dump())
    world.barrier()
    return record


def part_path(pred_path: Path, rank: int) -> Path:
    return pred_path.with_name(f"{pred_path.stem}.rank{rank}.jsonl")


def merge_parts(pred_path: Path) -> None:
    """Append the records of per-rank part files that the main file lacks, then remove the parts.
    A crash half-way leaves records in both places; the next merge skips those already present."""
    parts = sorted(pred_path.parent.glob(f"{pred_path.stem}.rank*.jsonl"))
    if not parts:
        return
    present = {p.id for p in read_predictions(pred_path, repair=True)}
    with PredictionWriter(pred_path) as writer:
        for part in parts:
            fresh = [p for p in read_predictions(part) if p.id not in present]
            writer.write(fresh)
            present.update(p.id for p in fresh)
    for part in parts:
        part.unlink()


def _iso_ago(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() - seconds, UTC).isoformat(timespec="seconds")


def _dedupe(predictions: Iterator[Prediction] | list[Prediction]) -> list[Prediction]:
    seen: dict[str, Prediction] = {}
    for p in predictions:
        seen.setdefault(p.id, p)
    return list(seen.values())
