"""Multiple-choice sample helpers: MMBench-style rows (TSV or parquet), option lists from the benchmarks'
formats, and circular passes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from evalkit.data.images import ImageRef
from evalkit.data.readers import read_parquet_rows
from evalkit.data.tsv import read_tsv
from evalkit.errors import InputError
from evalkit.scoring.options import LETTERS

Row = tuple[dict[str, str | None], ImageRef | None, str]  # lower-cased columns, image, where (for messages)

# Cells pandas reads as missing by default (LLaVA reads the MMBench TSVs with pandas)
PANDAS_NA = frozenset(
    ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A")
) | frozenset(("NA", "NULL", "NaN", "None", "n/a", "nan", "null"))


def is_missing(value: Any) -> bool:
    """LLaVA's `is_none` on a cell as pandas read it: NaN (pandas' NA strings), "nan"/"none" in any case."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    text = str(value)
    return text in PANDAS_NA or text.lower() in ("nan", "none")


def present(values: list[Any]) -> list[str]:
    """Option texts up to the first missing one, as LLaVA reads MMBench."""
    out: list[str] = []
    for v in values:
        if is_missing(v):
            break
        out.append(str(v))
    return out


def circular_passes(options: list[str], answer: str | None) -> list[tuple[list[str], str | None]]:
    """n passes for n options: pass k shows the options rotated left by k (the option at i moves to
    i - k), with the answer letter moved with its option. Pass 0 is the original order."""
    n = len(options)
    index = LETTERS.index(answer) if answer else None
    return [
        (options[k:] + options[:k], LETTERS[(index - k) % n] if index is not None else None) for k in range(n)
    ]


def _na(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def parquet_rows(files: list[Path], require: tuple[str, ...] = ()) -> list[Row]:
    """MMBench-style parquet rows as text (None and NaN cells empty), except a missing `hint`, which stays
    None: lmms-eval prompts an empty-string hint differently from a missing one. Columns in `require` must
    be in every file."""
    import pyarrow.parquet as pq

    for file in files:
        names = {n.lower() for n in pq.ParquetFile(file).schema_arrow.names}
        if missing := [c for c in require if c not in names]:
            raise InputError(f"{file}: no {', '.join(repr(c) for c in missing)} column")
    rows: list[Row] = []
    for r in read_parquet_rows(files):
        values: dict[str, str | None] = {k.lower(): "" if _na(v) else str(v) for k, v in r.values.items()}
        for key, value in r.values.items():
            if key.lower() == "hint":
                values["hint"] = None if _na(value) else str(value)
        rows.append((values, r.image(), r.where))
    return rows


def tsv_rows(path: Path, require: tuple[str, ...] = ()) -> list[Row]:
    """MMBench-style TSV rows; a hint cell pandas reads as missing ("", "nan", "NA", ...) is None, as the
    authors' tools read the files. Columns in `require` must be in the header."""
    rows: list[Row] = []
    for r in read_tsv(path, require=require):
        values: dict[str, str | None] = dict(r.values)
        if "hint" in values and is_missing(values["hint"]):
            values["hint"] = None
        rows.append((values, r.image, f"{path}:{r.number}"))
    return rows
