"""Safe image loading: references to images in files, parquet cells or bytes, decoded with limits.

A reference is cheap to hold (no pixels); `load_image` decodes it fully, converts to RGB and turns
every failure (missing file, truncated data, decompression bomb) into `ImageError` naming the source.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Literal

from PIL import Image, ImageFile
from pydantic import BaseModel, ConfigDict

from evalkit.errors import InputError

# Decompression-bomb guard: PIL raises DecompressionBombError above twice this many pixels and warns
# above it; we treat the warning as an error too (see load_image).
MAX_PIXELS = 120_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(InputError):
    """An image that could not be read; the sample becomes a failed prediction."""


class ImageRef(BaseModel):
    """Where one image lives: a file, a cell of a parquet row group, or inline bytes."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["file", "parquet", "bytes", "span"]
    path: str = ""
    row_group: int = 0
    row: int = 0
    column: str = "image"
    data: bytes = b""
    offset: int = 0  # "span": base64 text at these bytes of a file (an MMBench TSV cell)
    length: int = 0

    def describe(self) -> str:
        if self.kind == "parquet":
            return f"{self.path} (row group {self.row_group}, row {self.row}, column {self.column!r})"
        if self.kind == "span":
            return f"{self.path} (base64 image at byte {self.offset})"
        return self.path or "<inline image>"


def file_ref(path: Path) -> ImageRef:
    return ImageRef(kind="file", path=str(path))


def safe_join(root: Path, relative: str, where: str = "") -> Path:
    """Join a path taken from a dataset file onto its folder, refusing one that leaves it: absolute, or
    climbing out with "..". The check is on the path as written, so a symlink the user placed inside the
    folder (a shared image store) is followed; only the annotation file cannot point outside."""
    normal = os.path.normpath(relative)
    if not relative or os.path.isabs(relative) or normal == ".." or normal.startswith(".." + os.sep):
        prefix = f"{where}: " if where else ""
        raise InputError(f"{prefix}path {relative!r} escapes the data folder {root}")
    return root / normal


class _RowGroupCache:
    """Keeps the last few decoded parquet row groups' image cells (a batch reads neighbours)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int, str], list[object]] = OrderedDict()
        self._lock = threading.Lock()

    def cell(self, ref: ImageRef) -> object:
        key = (ref.path, ref.row_group, ref.column)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][ref.row]
        import pyarrow.parquet as pq

        table = pq.ParquetFile(ref.path).read_row_group(ref.row_group, columns=[ref.column])
        cells = table.column(ref.column).to_pylist()
        with self._lock:
            self._items[key] = cells
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return cells[ref.row]


_ROW_GROUPS = _RowGroupCache()


def image_bytes(ref: ImageRef) -> bytes:
    """The encoded bytes of an image (file content, parquet cell bytes, or inline data)."""
    if ref.kind == "bytes":
        return ref.data
    if ref.kind == "file":
        try:
            mode = os.stat(ref.path).st_mode  # before opening: opening a FIFO would wait for a writer
            if not stat.S_ISREG(mode):
                raise ImageError(f"not a regular file (a folder, FIFO or device): {ref.path}")
            return Path(ref.path).read_bytes()
        except FileNotFoundError as exc:
            raise ImageError(f"image not found: {ref.path}") from exc
        except OSError as exc:
            raise ImageError(f"cannot read image {ref.path}: {exc.strerror or exc}") from exc
    if ref.kind == "span":
        try:
            with open(ref.path, "rb") as f:
                f.seek(ref.offset)
                return base64.b64decode(f.read(ref.length), validate=False)
        except (OSError, binascii.Error) as exc:
            raise ImageError(f"cannot read {ref.describe()}: {exc}") from exc
    cell = _ROW_GROUPS.cell(ref)
    if isinstance(cell, dict) and cell.get("bytes"):
        return bytes(cell["bytes"])
    if isinstance(cell, bytes | bytearray):
        return bytes(cell)
    raise ImageError(f"no image bytes in {ref.describe()}")


def decode_image(data: bytes, source: str) -> Image.Image:
    """Decode fully to RGB with the pixel limit enforced; any failure names `source`."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                return img.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image too large (over {MAX_PIXELS:,} pixels): {source}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"corrupt or unsupported image: {source} ({exc})") from exc


class _DecodedCache:
    """The last few decoded images, so that passes sharing an image (MMBench circular evaluation, MME
    pairs) decode it once; batches keep such samples next to each other."""

    def __init__(self, max_pixels: int = 64 * 1024 * 1024) -> None:
        self.max_pixels = max_pixels  # about 200 MB of RGB at most, however large the images are
        self._pixels = 0
        self._items: OrderedDict[ImageRef, Image.Image] = OrderedDict()
        self._lock = threading.Lock()
        self.decoded = 0  # how many times an image was actually decoded (for tests and benchmarks)

    def get(self, ref: ImageRef) -> Image.Image:
        with self._lock:
            if ref in self._items:
                self._items.move_to_end(ref)
                return self._items[ref]
        image = decode_image(image_bytes(ref), ref.describe())
        with self._lock:
            self.decoded += 1
            if ref not in self._items:
                self._items[ref] = image
                self._pixels += image.width * image.height
            while self._pixels > self.max_pixels and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._pixels -= old.width * old.height
        return image


DECODED = _DecodedCache()


def load_image(ref: ImageRef) -> Image.Image:
    """The decoded RGB image (shared: callers must not modify it in place)."""
    return DECODED.get(ref)


def expand_to_square(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """LLaVA's `pad` mode: centre the image on a square canvas of the background colour."""
    width, height = img.size
    if width == height:
        return img
    side = max(width, height)
    canvas = Image.new(img.mode, (side, side), background)
    canvas.paste(img, ((side - width) // 2, (side - height) // 2))
    return canvas
