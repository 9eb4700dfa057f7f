"""Streaming reader for MMBench-style TSV files (hundreds of MB of base64 images).

The file is scanned once through a memory map: text cells are decoded, but an image cell is kept only as
its byte span (an `ImageRef` of kind "span"), decoded from base64 when the sample runs. Cells quoted the
way pandas writes them (a hint with a newline or tab) are handled. An `image` cell of 64 characters or
fewer names the `index` of another row whose image it reuses. Column names match case-insensitively.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evalkit.data.images import ImageRef
from evalkit.errors import InputError

_CELL_END = re.compile(rb"[\t\n]")
BACK_REFERENCE_MAX = 64


@dataclass(frozen=True)
class TsvRow:
    number: int  # 1-based line of the record's start, header = 1
    values: dict[str, str]  # lower-cased column name -> text ("" for an empty cell)
    image: ImageRef | None

    def get(self, column: str, default: str = "") -> str:
        return self.values.get(column.lower(), default)


def _cells(data: mmap.mmap | bytes) -> Iterator[tuple[int, list[tuple[int, int, bool]]]]:
    """(line number, [(start, end, quoted)]) for each record."""
    pos, line, n = 0, 1, len(data)
    while pos < n:
        start_line, cells = line, []
        while True:
            if data[pos : pos + 1] == b'"':
                i = pos + 1
                while True:
                    j = data.find(b'"', i)
                    if j < 0:
                        raise InputError(f"line {start_line}: unterminated quoted cell")
                    if data[j + 1 : j + 2] == b'"':
                        i = j + 2
                        continue
                    break
                line += data[pos:j].count(b"\n")
                cells.append((pos + 1, j, True))
                pos = j + 1
                if data[pos : pos + 2] == b"\r\n":  # a CRLF file: the record ends after the quote
                    pos += 1
            else:
                m = _CELL_END.search(data, pos)
                end = m.start() if m else n
                stop = end - 1 if end > pos and data[end - 1 : end] == b"\r" else end
                cells.append((pos, stop, False))
                pos = end
            if pos >= n or data[pos : pos + 1] == b"\n":
                pos += 1
                line += 1
                break
            pos += 1  # a tab: next cell of the same record
        yield start_line, cells


def _text(data: mmap.mmap | bytes, cell: tuple[int, int, bool]) -> str:
    start, end, quoted = cell
    raw = data[start:end].decode("utf-8")
    return raw.replace('""', '"') if quoted else raw


def read_tsv(
    path: Path, image_column: str = "image", index_column: str = "index", require: tuple[str, ...] = ()
) -> list[TsvRow]:
    """Rows of an MMBench-style TSV; a malformed row is an error naming the file and line. The header must
    hold `index`, `image` and the `require`d columns."""
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise InputError(f"file not found: {path}") from exc
    with handle:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _read(path, data, image_column, index_column, require)


def _read(
    path: Path, data: mmap.mmap, image_column: str, index_column: str, require: tuple[str, ...]
) -> list[TsvRow]:
    """Scan the mapped file (see `read_tsv`)."""
    rows: list[TsvRow] = []
    header: list[str] = []
    spans: dict[str, ImageRef] = {}
    backrefs: list[tuple[int, str]] = []
    number = 1
    try:
        for number, cells in _cells(data):
            if not header:
                header = [_text(data, c).strip().lstrip("\ufeff").lower() for c in cells]
                needed = (index_column, image_column, *require)
                if missing := [c for c in needed if c.lower() not in header]:
                    raise InputError(
                        f"{path}:1: no {', '.join(repr(c) for c in missing)} column in the header "
                        f"(it needs {', '.join(needed)})"
                    )
                image_at = header.index(image_column)
                continue
            if len(cells) == 1 and cells[0][0] == cells[0][1]:
                continue  # blank line
            if len(cells) != len(header):
                raise InputError(f"{path}:{number}: {len(cells)} cells, the header has {len(header)}")
            values = {
                name: _text(data, c)
                for i, (name, c) in enumerate(zip(header, cells, strict=True))
                if i != image_at
            }
            start, end, _ = cells[image_at]
            image: ImageRef | None = None
            if end - start > BACK_REFERENCE_MAX:
                image = ImageRef(kind="span", path=str(path), offset=start, length=end - start)
                spans[values[index_column].strip()] = image
            elif end > start:
                backrefs.append((len(rows), _text(data, cells[image_at]).strip()))
            rows.append(TsvRow(number, values, image))
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1].hex()
        raise InputError(f"{path}:{number}: a cell is not UTF-8 text (byte 0x{bad})") from None
    except InputError as exc:
        if str(exc).startswith("line "):
            raise InputError(f"{path}:{str(exc).removeprefix('line ')}") from exc
        raise

    for i, target in backrefs:
        if target not in spans:
            raise InputError(f"{path}:{rows[i].number}: image refers to index {target!r}, which has no image")
        rows[i] = TsvRow(rows[i].number, rows[i].values, spans[target])
    return rows
