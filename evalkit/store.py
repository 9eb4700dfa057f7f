"""A task's results folder: the manifest a resumed run must match, the predictions file (resume,
repair, retry of failed records, per-rank part files under data parallelism) and metrics.json."""

from __future__ import annotations

from pathlib import Path

from evalkit.distributed import World
from evalkit.errors import ConfigError
from evalkit.records import (
    MANIFEST,
    METRICS,
    PREDICTIONS,
    Manifest,
    Prediction,
    PredictionWriter,
    RunRecord,
    atomic_write,
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

    def check_manifest(self, manifest: Manifest) -> None:
        """Pin the settings on first use; refuse to mix predictions made with other settings."""
        path = self.folder / MANIFEST
        if not self.world.is_main:
            return
        if not path.exists():
            atomic_write(path, manifest.model_dump_json(indent=2) + "\n")
            return
        old = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
        for field in Manifest.PINNED:
            if getattr(old, field) != getattr(manifest, field):
                raise ConfigError(
                    f"{self.folder}: existing predictions were made with {field}={getattr(old, field)!r}, "
                    f"this run has {getattr(manifest, field)!r}; "
                    "use another --name/--output or remove the folder"
                )

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
        if self.world.is_main and path.exists():
            manifest = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
            if manifest.backend_info != info:
                atomic_write(
                    path, manifest.model_copy(update={"backend_info": info}).model_dump_json(indent=2) + "\n"
                )

    def backend_info(self) -> dict[str, object] | None:
        path = self.folder / MANIFEST
        return (
            Manifest.model_validate_json(path.read_text(encoding="utf-8")).backend_info
            if path.exists()
            else None
        )

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

    def finished(self, n: int, fingerprint: str) -> RunRecord | None:
        """The existing run record when it covers exactly these samples of this data."""
        if not self.metrics.exists():
            return None
        record = read_run_record(self.metrics)
        return record if record.n == n and record.data.fingerprint == fingerprint else None

    def write_record(self, record: RunRecord) -> None:
        atomic_write(self.metrics, record.dump())
