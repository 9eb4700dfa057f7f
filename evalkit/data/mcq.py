"""Multiple-choice sample helpers: option lists from the benchmarks' formats, and circular passes."""

from __future__ import annotations

import math
from typing import Any

from evalkit.scoring.options import LETTERS

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
