"""Multiple-choice sample helpers: option lists from the benchmarks' formats, and circular passes."""

from __future__ import annotations

import math
from typing import Any

from evalkit.scoring.options import LETTERS


def present(values: list[Any]) -> list[str]:
    """Option texts up to the first missing one (None, NaN, "", "nan", "none"), as LLaVA reads MMBench."""
    out: list[str] = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            break
        text = str(v)
        if not text.strip() or text.strip().lower() in ("nan", "none"):
            break
        out.append(text)
    return out


def circular_passes(options: list[str], answer: str | None) -> list[tuple[list[str], str | None]]:
    """n passes for n options: pass k shows the options rotated left by k (the option at i moves to
    i - k), with the answer letter moved with its option. Pass 0 is the original order."""
    n = len(options)
    index = LETTERS.index(answer) if answer else None
    return [
        (options[k:] + options[:k], LETTERS[(index - k) % n] if index is not None else None) for k in range(n)
    ]
