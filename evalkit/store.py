"""A task's results folder: the manifest a resumed run must match, the predictions file (resume,
repair, retry of failed records, per-rank part files under data parallelism) and metrics.json."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from evalkit.distributed import World
from evalkit.errors import ConfigError, InputError
from evalkit.fs import FolderLock, atomic_write
from evalkit.records import (
    MANIFEST,
    METRICS,
    PREDICTIONS,
    Manifest,
    Prediction,
    PredictionWriter,
    RunRecord,
    read_predictions,
    read_run_record,
    rewrite_predictions,
)


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


class TaskStore:
    """`<output>/<name>/<task>/`; the main rank alone changes shared files, other ranks write part files."""

    def __init__(self, folder: Path, world: World) -> None:
        self.folder = folder
        self.world = world
        self.predictions = folder / PREDICTIONS
        self.metrics = folder / METRICS
        if world.is_main:
            folder.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Sole use of the folder for this run (all its ranks): a second run is refused with the holder
        named. Under torchrun rank 0 holds the lock and tells the other ranks whether it got it."""
        lock = FolderLock(self.folder)
        self.world.on_main(lock.acquire)
        try:
            yield
        finally:
            lock.release()

    def has_records(self) -> bool:
        """Whether any prediction has been written (a folder holding none pins nothing)."""
        parts = self.predictions.parent.glob(f"{self.predictions.stem}.rank*.jsonl")
        return any(_holds_line(p) for p in [self.predictions, *parts])

    def read_manifest(self) -> Manifest | None:
        path = self.folder / MANIFEST
        if not path.exists():
            return None
        try:
            return Manifest.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise InputError(
                f"{path}: not an evalkit manifest ({_first(exc)}); it pins the settings of the predictions "
                "beside it: restore it, or remove the folder to start again"
            ) from None

    def check_manifest(self, manifest: Manifest, same_prompts: Callable[[], bool] | None = None) -> None:
        """Pin the settings when the first records are made; refuse to mix predictions made with other
        settings. A folder without records (a run that failed to start) pins nothing. A new task version
        alone is accepted when `same_prompts()` says every record's prompt is what the task asks now (a
        scoring change: the records are scored again, nothing is generated again)."""
        path = self.folder / MANIFEST
        if not self.world.is_main:
            return
        if not self.has_records():
            atomic_write(path, manifest.model_dump_json(indent=2) + "\n")
            return
        old = self.read_manifest()
        if old is None:  # records without a manifest (made by an older evalkit or copied): adopt them
            atomic_write(path, manifest.model_dump_json(indent=2) + "\n")
            return
        adopted = {  # what older manifests did not record (the checkpoint's content): taken as it is now
            k: v
            for k, v in manifest.model_settings.items()
            if k in ("content", "stop") and k not in old.model_settings
        }
        if adopted:
            old = old.model_copy(update={"model_settings": {**old.model_settings, **adopted}})
        changes = [
            change
            for field in Manifest.PINNED
            for change in differences(field, old.pinned(field), manifest.pinned(field))
        ]
        if changes and all(c.startswith("task_version:") for c in changes):
            if same_prompts is not None and same_prompts():
                atomic_write(
                    path,
                    old.model_copy(update={"task_version": manifest.task_version}).model_dump_json(indent=2)
                    + "\n",
                )
                return
            changes = [f"{changes[0]} (its prompts changed)"]
        if changes:
            raise ConfigError(
                f"{self.folder}: its predictions were made with other settings ({'; '.join(changes)}); "
                "use another --name or --output, or remove the folder"
            )
        if adopted:  # pinned from now on
            atomic_write(path, old.model_dump_json(indent=2) + "\n")

    def resume(self, wanted: set[str]) -> dict[str, Prediction]:
        """Records already made for the wanted ids. The main rank first merges leftover part files, cuts a
        torn last line and drops failed records (so they are retried); every rank then reads the file."""
        if self.world.is_main:
            merge_parts(self.predictions)
            existing = read_predictions(self.predictions, repair=True)
            kept: dict[str, Prediction] = {}
            for p in existing:
                if not p.failed:
                    kept.setdefault(p.id, p)
            if len(kept) != len(existing):
                rewrite_predictions(self.predictions, kept.values())
        self.world.barrier()
        return {p.id: p for p in read_predictions(self.predictions) if p.id in wanted}

    def remember_backend(self, info: dict[str, object]) -> None:
        """Keep what the backend reported, so a later run that loads nothing can still record it."""
        path = self.folder / MANIFEST
        manifest = self.read_manifest() if self.world.is_main else None
        if manifest is not None and manifest.backend_info != info:
            updated = manifest.model_copy(update={"backend_info": info})
            atomic_write(path, updated.model_dump_json(indent=2) + "\n")

    def backend_info(self) -> dict[str, object] | None:
        manifest = self.read_manifest()
        return manifest.backend_info if manifest is not None else None

    def writer(self) -> PredictionWriter:
        target = self.predictions if self.world.size == 1 else part_path(self.predictions, self.world.rank)
        return PredictionWriter(target)

    def gather(self, wanted: set[str]) -> dict[str, Prediction]:
        """After generation (main rank): every record, part files merged in."""
        merge_parts(self.predictions)
        return {p.id: p for p in read_predictions(self.predictions) if p.id in wanted}

    def guard_limit(self, n: int) -> None:
        """A --limit run must not replace the metrics of a run over more samples."""
        if self.world.is_main and self.metrics.exists() and (old := read_run_record(self.metrics)).n > n:
            raise ConfigError(
                f"{self.folder} holds results for {old.n} samples; a run over {n} would replace "
                "its metrics.json: use another --name or --output for limited runs"
            )

    def update(self, records: list[Prediction]) -> None:
        """Replace records by id (the judge's grades), atomically; other records are kept as they are."""
        by_id = {r.id: r for r in records}
        current = read_predictions(self.predictions)
        rewrite_predictions(self.predictions, [by_id.get(r.id, r) for r in current])

    def finished(self, manifest: Manifest, n: int) -> RunRecord | None:
        """The existing run record when it covers exactly these samples of this data, scored by this task
        version with these reply settings (else the records are scored and aggregated again)."""
        if not self.metrics.exists():
            return None
        record = read_run_record(self.metrics)
        same = (record.n, record.data.fingerprint, record.task_version, record.replies or {}) == (
            n, manifest.data_fingerprint, manifest.task_version, manifest.replies or {}
        )  # fmt: skip
        return record if same else None

    def all_records(self) -> list[Prediction]:
        """The records of the main file and of any part files left by data-parallel ranks."""
        parts = sorted(self.predictions.parent.glob(f"{self.predictions.stem}.rank*.jsonl"))
        return [p for path in [self.predictions, *parts] for p in read_predictions(path)]

    def write_record(self, record: RunRecord) -> None:
        atomic_write(self.metrics, record.dump())


def _holds_line(path: Path) -> bool:
    """Whether the file has at least one complete line."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            if b"\n" in chunk:
                return True
    return False


def differences(name: str, old: Any, new: Any) -> list[str]:
    """The pinned settings that differ, each as "name: old -> new"; dicts are compared key by key so only
    the keys that changed are named (e.g. "generation.max_new_tokens: 128 -> 16")."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            change
            for key in sorted({*old, *new}, key=str)
            for change in differences(f"{name}.{key}", old.get(key), new.get(key))
        ]
    return [] if old == new else [f"{name}: {old!r} -> {new!r}"]


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))
