"""Thumbnails of the samples' images for the report, read through each task's own loader (so every data
layout the runner reads works: files, parquet cells, TSV base64 spans), each embedded once as a small
JPEG data URI and shown by a CSS class, however many records show it (MME asks two questions per image)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import ImageOps

from evalkit.data.images import ImageRef, load_image
from evalkit.errors import EvalkitError
from evalkit.records import RunRecord


@dataclass(frozen=True)
class Source:
    """Where a run's images were looked for: each sample id's images, or why there are none."""

    folder: Path | None
    images: dict[str, tuple[ImageRef, ...]] = field(default_factory=dict)
    problem: str | None = None  # the whole run has no images: why
    note: str | None = None  # images found, with a caveat (the data differs from the run's)


@dataclass(frozen=True)
class Thumb:
    css_class: str | None  # None: no image, see `reason`
    reason: str = ""
    more: int = 0  # further images of the sample not shown


class Thumbnails:
    """Finds a run's images under `data_root/<task folder>` (else where the run read its data) and turns
    them into thumbnails at most `size` pixels a side."""

    def __init__(self, data_root: Path | None, size: int = 128, quality: int = 70) -> None:
        self.data_root = data_root
        self.size = size
        self.quality = quality
        self._sources: dict[tuple[str, Path], Source] = {}
        self._classes: dict[ImageRef, str | Exception] = {}
        self._uris: dict[str, str] = {}  # css class -> data URI

    def source(self, record: RunRecord) -> Source:
        from evalkit.registry import all_tasks

        task = all_tasks().get(record.task)
        if task is None:
            return Source(None, problem=f"task {record.task!r} is not registered here: no images")
        folder = self.data_root / task.folder if self.data_root is not None else Path(record.data.path)
        key = (record.task, folder)
        if key not in self._sources:
            try:
                dataset = task.load(folder)
            except (EvalkitError, OSError, ValueError) as exc:
                self._sources[key] = Source(folder, problem=f"no images: cannot read {folder} ({exc})")
            else:
                images = {s.id: s.images for s in dataset.samples}
                note = None
                if dataset.fingerprint != record.data.fingerprint:
                    note = (
                        f"the data in {folder} ({dataset.fingerprint}) differs from the run's "
                        f"({record.data.fingerprint}): images may not be the ones the model saw"
                    )
                self._sources[key] = Source(folder, images, note=note)
        return self._sources[key]

    def thumb(self, source: Source, sample_id: str) -> Thumb:
        if source.problem is not None:
            return Thumb(None, source.problem)
        refs = source.images.get(sample_id)
        if not refs:
            return Thumb(None, "no image for this sample in the data")
        ref = refs[0]
        if ref not in self._classes:
            try:
                self._classes[ref] = self._encode(ref)
            except EvalkitError as exc:
                self._classes[ref] = exc
        found = self._classes[ref]
        if isinstance(found, Exception):
            return Thumb(None, str(found))
        return Thumb(found, more=len(refs) - 1)

    def _encode(self, ref: ImageRef) -> str:
        small = ImageOps.contain(load_image(ref), (self.size, self.size))
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=self.quality)
        css_class = f"img{len(self._uris)}"
        self._uris[css_class] = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
        return css_class

    def css(self) -> str:
        """One rule per embedded image: `.imgN{background-image:url(data:...)}`."""
        return "\n".join(f".{c}{{background-image:url({uri})}}" for c, uri in self._uris.items())
