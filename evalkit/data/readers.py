"""Readers shared by task loaders: JSON / JSON-lines files and local Hugging Face parquet snapshots.

Errors name the file and line; parquet rows are read without their image column, which is
referenced per row (`ImageRef` kind "parquet") and decoded only when a sample is run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.data.images import ImageRef
from evalkit.errors import InputError


@dataclass(frozen=True)
class Sample:
    """One question: native id, images, the benchmark's text, the target and metadata."""

    id: str
    images: tuple[ImageRef, ...]
    question: str
    target: str
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # known bad at load time (e.g. missing image): becomes a failed prediction
    group: str = ""  # samples that share images (circular passes of one question) are batched together

    @property
    def options(self) -> dict[str, str]:
        """The option texts by letter (`meta["options"]`), {} for a question without options."""
        return options_of(self.meta, self.id)

    @property
    def hint(self) -> str | None:
        """The context shown before the question (MMBench's hint, ScienceQA's context), None if none."""
        hint = self.meta.get("hint")
        return hint if isinstance(hint, str) and hint else None


def options_of(meta: dict[str, Any], where: str) -> dict[str, str]:
    """`meta["options"]` checked to be letters mapped to texts."""
    options = meta.get("options") or {}
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise InputError(f"{where}: options must map letters to texts, not {options!r:.80}")
    return options


@dataclass(frozen=True)
class Dataset:
    """The samples of a task as read from disk, with where they came from."""

    samples: list[Sample]
    path: Path
    format: str  # "authors" | "hf-parquet"
    fingerprint: str


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise InputError(f"{what}: folder not found: {path}")
    return path


def fingerprint(files: list[Path]) -> str:
    """sha256 over the annotation files' names and bytes (not images), short form."""
    digest = hashlib.sha256()
    for f in sorted(files):
        digest.update(f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]


def open_binary(path: Path) -> Any:
    """The file opened for reading bytes; a missing file or a folder is an error naming it."""
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise InputError(f"file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: a folder, not a file") from exc


def _decode(data: bytes, path: Path, number: int) -> str:
    """UTF-8 text (a BOM dropped); bad bytes are an error naming the file and line."""
    try:
        return data.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        line = number + data.count(b"\n", 0, exc.start)
        bad = data[exc.start : exc.start + 1].hex()
        raise InputError(f"{path}:{line}: not UTF-8 text (byte 0x{bad}); re-save the file as UTF-8") from None


def read_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line of a UTF-8 text file, without its line break."""
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, 1):
            yield number, _decode(raw, path, number).rstrip("\r\n")


def read_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a malformed line is an error naming it."""
    for number, line in read_text_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: malformed JSON line ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, got {_kind(obj)}")
        yield number, obj


def read_json(path: Path) -> Any:
    """A whole JSON file (for the list in a file of tens of MB or more: `jsonstream.json_list`)."""
    with open_binary(path) as handle:
        text = _decode(handle.read(), path, 1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from exc


def require_keys(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")


FieldType = type | tuple[type, ...]
TEXT: FieldType = str
ID: FieldType = (str, int)  # a question id: text or a whole number
LIST: FieldType = list
OPTIONAL_TEXT: FieldType = (str, type(None))
_KIND = {str: "text", int: "a whole number", float: "a number", list: "a list", dict: "an object",
         bool: "true/false", type(None): "null"}  # fmt: skip


def _kind(value: Any) -> str:
    return _KIND.get(type(value), type(value).__name__)


def require_fields(obj: Any, where: str, fields: Mapping[str, FieldType]) -> dict[str, Any]:
    """`obj` as a JSON object holding each field with a value of its type (bool is never a number); a
    missing field, or a number or null where text belongs, is an error naming the file and row."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object, got {_kind(obj)}")
    if missing := [k for k in fields if k not in obj]:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
    for name, wanted in fields.items():
        value = obj[name]
        types = wanted if isinstance(wanted, tuple) else (wanted,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(_KIND.get(t, t.__name__) for t in types)
            raise InputError(f"{where}: {name} is {_kind(value)} ({value!r:.60}), expected {expected}")
    return obj


def parquet_files(folder: Path) -> list[Path]:
    """The parquet files of a local HF snapshot below `folder`, in name order. When the snapshot has a
    `data/` folder (the default config, what `load_dataset(repo)` reads) only that is used: other
    configs of the same dataset (e.g. lmms-lab/POPE's `Full/`) repeat its rows."""
    default = folder / "data"
    if default.is_dir() and (files := sorted(p for p in default.rglob("*.parquet") if p.is_file())):
        return files
    return sorted(p for p in folder.rglob("*.parquet") if p.is_file())


def split_files(files: list[Path], split: str, what: str) -> list[Path]:
    """The parquet files of one split (`<split>-*.parquet`, or inside a `<split>/` folder)."""
    chosen = [f for f in files if f.name.startswith(f"{split}-") or f.parent.name == split]
    if not chosen:
        where = files[0].parent if files else "the snapshot"
        raise InputError(f"{what}: no {split} parquet files ({split}-*.parquet) in {where}")
    return chosen


@dataclass(frozen=True)
class ParquetRow:
    values: dict[str, Any]
    file: Path
    row_group: int
    row: int
    number: int  # 1-based row number within the file, for messages

    def image(self, column: str = "image") -> ImageRef:
        return ImageRef(
            kind="parquet", path=str(self.file), row_group=self.row_group, row=self.row, column=column
        )

    @property
    def where(self) -> str:
        return f"{self.file}: row {self.number}"

    def require(self, *columns: str) -> dict[str, Any]:
        """The row's values, or an error naming file, row and the missing columns."""
        missing = [c for c in columns if self.values.get(c) is None]
        if missing:
            raise InputError(f"{self.where}: missing {', '.join(missing)}")
        return self.values


def read_parquet_rows(files: list[Path], image_columns: tuple[str, ...] = ("image",)) -> Iterator[ParquetRow]:
    """Rows of HF snapshot parquet files without their image columns (those are referenced lazily)."""
    import pyarrow.parquet as pq

    for file in files:
        try:
            pf = pq.ParquetFile(file)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise InputError(f"{file}: not a readable parquet file ({exc})") from exc
        columns = [c for c in pf.schema_arrow.names if c not in image_columns]
        number = 0
        for group in range(pf.num_row_groups):
            table = pf.read_row_group(group, columns=columns)
            for row, values in enumerate(table.to_pylist()):
                number += 1
                yield ParquetRow(values=values, file=file, row_group=group, row=row, number=number)


def read_benchmark(
    folder: Path,
    what: str,
    authors: Callable[[Path], Dataset],
    snapshot: Callable[[Path, list[Path]], Dataset],
) -> Dataset:
    """Read a benchmark folder holding either the authors' files or a local HF parquet snapshot."""
    require_dir(folder, f"{what} data")
    if files := parquet_files(folder):
        return snapshot(folder, files)
    return authors(folder)
