"""The entries of one list inside a large JSON file, parsed one at a time (ijson), so that a reader keeps only
what it takes from each entry instead of the whole document: json.load of VQAv2's 165 MB annotation file
holds about 1 GB. Small files are simpler to read whole (`readers.read_json`).

Values are what `json.load` gives (floats, not Decimals) and a UTF-8 BOM is skipped. ijson uses its C parser
(backend "yajl2_c") where its wheel has one and otherwise falls back by itself to a slower one. Unlike
json.load, the C parser refuses NaN/Infinity and whole numbers beyond 64 bits, and reads an escaped lone
surrogate ("\\ud800") as "?"; none occur in the benchmarks' files. A malformed file is one InputError naming
the file, the line and the byte where parsing stopped (found by parsing once more, only on that error).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import ijson
from ijson.common import JSONError

from evalkit.data.readers import open_binary
from evalkit.errors import InputError

log = logging.getLogger(__name__)
_parser: Any = ijson  # the fastest backend installed (tests swap in others)
BACKEND: str = ijson.backend_name  # "yajl2_c", "yajl2_cffi", "yajl2", "yajl" or "python" (~20x slower)
_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 16
_SLOW_NOTICE = 20 << 20  # bytes: a file the pure-Python parser takes several seconds over


def json_list(path: Path, key: str, expected: str) -> Iterator[Any]:
    """Each entry of the list under the top-level `key` of the JSON object in `path` ("" for a file that is a
    list), parsed when reached. Anything else in that place is the error `<path>: expected <expected>`."""
    if _parser.backend_name == "python" and path.is_file() and path.stat().st_size > _SLOW_NOTICE:
        log.warning(
            "%s: ijson has no C parser here (backend 'python'), so this file is read ~20x slower; a wheel "
            "of ijson for this platform has one (pip install --force-reinstall ijson)",
            path,
        )
    with open_binary(path) as handle:
        source = _Source(handle)
        try:
            if not _list_at(_parser.parse(source, buf_size=_CHUNK, use_float=True), key):
                raise InputError(f"{path}: expected {expected}")
        except JSONError as exc:
            raise _malformed(path, source.offset, exc) from None
    with open_binary(path) as handle:
        source = _Source(handle)
        prefix = f"{key}.item" if key else "item"
        try:
            yield from _parser.items(source, prefix, buf_size=_CHUNK, use_float=True)
        except JSONError as exc:
            raise _malformed(path, source.offset, exc) from None


def _list_at(events: Iterable[tuple[str, str, Any]], key: str) -> bool:
    """Whether the parse events start a list at the top-level `key` (read only up to there)."""
    for prefix, event, _ in events:
        if not key:
            return event == "start_array"
        if prefix == key:
            return event == "start_array"
        if prefix == "" and event not in ("start_map", "map_key"):
            return False  # not an object, or its end without the key
    return False


class _Source:
    """A binary file as the parser reads it: the BOM skipped, the bytes handed out counted and, from
    `slow_from` on, one byte per read, so that a parse error comes at the very byte that caused it."""

    def __init__(self, handle: BinaryIO, slow_from: int | None = None) -> None:
        self.handle, self.slow_from, self.offset, self.at_end = handle, slow_from, 0, False
        if handle.read(len(_BOM)) != _BOM:
            handle.seek(0)
        self.skipped = handle.tell()

    def read(self, size: int = _CHUNK) -> bytes:
        if size == 0:
            return b""
        if self.slow_from is not None:
            size = 1 if self.offset >= self.slow_from else min(size, self.slow_from - self.offset)
        data = self.handle.read(size)
        self.offset += len(data)
        self.at_end = not data
        return data


def _reason(exc: Exception) -> str:
    """The parser's message on one line (yajl adds the text around the error on further lines)."""
    text = str(exc).strip() or type(exc).__name__
    if text[:2] in ("b'", 'b"'):  # yajl's message quoting bytes that are not UTF-8 comes as a bytes repr
        text = text[2:].replace("\\n", "\n")
    return text.splitlines()[0].rstrip(".")


def _malformed(path: Path, read: int, exc: Exception) -> InputError:
    """The parse error as one line. `read` bytes had been handed to the parser when it failed: parse again,
    one byte per read over the last two chunks, to find the byte it stops at, then count its line."""
    with open_binary(path) as handle:
        source = _Source(handle, slow_from=max(0, read - 2 * _CHUNK))
        try:
            for _ in _parser.basic_parse(source, buf_size=_CHUNK, use_float=True):  # as json_list parses
                pass
        except JSONError:
            pass
        offset = source.skipped + max(0, source.offset - 1)  # the last byte the parser was given
        line, window_start, window = _line_and_window(handle, offset)
    reason = _reason(exc)
    if "utf8" in reason.lower().replace("-", ""):  # name the first bad byte, as readers.read_json does
        try:
            window.decode("utf-8")
        except UnicodeDecodeError as bad:
            byte, offset = window[bad.start : bad.start + 1].hex(), window_start + bad.start
            return InputError(
                f"{path}:{line}: not UTF-8 text (byte 0x{byte} at byte {offset}); re-save the file as UTF-8"
            )
    where = "at its end" if source.at_end else f"at byte {offset}"
    return InputError(f"{path}:{line}: malformed JSON {where} ({reason})")


def _line_and_window(handle: BinaryIO, offset: int) -> tuple[int, int, bytes]:
    """The line (from 1) of byte `offset`; the bytes from 3 before it to 4 after it, and where they start."""
    handle.seek(0)
    line, done = 1, 0
    while done < offset and (chunk := handle.read(min(1 << 20, offset - done))):
        line += chunk.count(b"\n")
        done += len(chunk)
    start = max(0, offset - 3)
    handle.seek(start)
    return line, start, handle.read(offset + 4 - start)
