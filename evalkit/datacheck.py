"""What a data root holds for some tasks, before any model is loaded: each task's annotation files read
(or why they cannot be), how many samples, and how many of the image files they name are missing.

`evalkit run` reads every task's data this way first, so a missing folder stops the run before anything
is generated, not hours later when its turn comes; `evalkit data check` prints the full report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from evalkit.data.readers import Dataset
from evalkit.errors import EvalkitError, InputError
from evalkit.task import Task


@dataclass(frozen=True)
class DataReport:
    """One task's data: read (`problem` None) with its samples, or why not; image files checked."""

    task: str
    folder: Path
    problem: str | None = None
    samples: int = 0
    format: str = ""
    path: str = ""
    images: int = 0  # image files named (each once)
    missing_images: int = 0  # of those, not a readable regular file
    first_missing: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None and self.missing_images == 0


def load_dataset(task: Task, root: Path) -> Dataset:
    """The task's samples from `<root>/<task.folder>`; any problem is an error naming the task."""
    try:
        dataset = task.load(root / task.folder)
    except EvalkitError as exc:
        raise InputError(f"{task.name}: {exc}") from exc
    if not dataset.samples:
        raise InputError(f"{task.name}: {dataset.path} holds no samples (an empty or header-only file?)")
    return dataset


def load_all(tasks: list[Task], root: Path) -> dict[str, Dataset]:
    """Every task's data, read before any model loads; the problems of all tasks at once when any fails."""
    datasets: dict[str, Dataset] = {}
    problems: list[str] = []
    for task in tasks:
        try:
            datasets[task.name] = load_dataset(task, root)
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        more = (
            f" (and {len(problems) - 1} more task(s): `evalkit data check` lists them)"
            if problems[1:]
            else ""
        )
        raise InputError(problems[0] + more)
    return datasets


def _readable(path: str) -> bool:
    try:
        return os.path.isfile(path) and os.access(path, os.R_OK)
    except OSError:
        return False


def check(task: Task, root: Path, images: bool = True) -> DataReport:
    """The report for one task: its data read, and (with `images`) every image file it names looked up."""
    folder = root / task.folder
    try:
        dataset = load_dataset(task, root)
    except InputError as exc:
        return DataReport(task.name, folder, problem=str(exc).removeprefix(f"{task.name}: "))
    files = sorted({ref.path for s in dataset.samples for ref in s.images if ref.kind == "file"})
    missing = [p for p in files if not _readable(p)] if images else []
    return DataReport(
        task.name,
        folder,
        samples=len(dataset.samples),
        format=dataset.format,
        path=str(dataset.path),
        images=len(files),
        missing_images=len(missing),
        first_missing=missing[0] if missing else "",
    )
