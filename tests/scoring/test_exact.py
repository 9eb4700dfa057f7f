"""Exact-match normalisers and scorers on hand-worked rows; each row: input, expected, why."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from evalkit.data.readers import Sample
from evalkit.scoring.exact import exact_match, lower_no_punctuation, rstrip_period_lower
from evalkit.scoring.types import Scored

# LLaVA convert_gqa_for_eval.py: text.rstrip('.').lower()
RSTRIP_PERIOD_LOWER = [
    ("Yes.", "yes", "one trailing period"),
    ("woman...", "woman", "every trailing period"),
    ("T-Shirt.", "t-shirt", "inner punctuation stays"),
    ("Yes!", "yes!", "only periods are stripped"),
    (" yes", " yes", "no whitespace strip (the runner strips under protocol llava)"),
    ("e.g.", "e.g", "inner periods stay"),
    ("3.5", "3.5", "a decimal point is inner"),
    (".", "", "nothing left"),
]

# lmms-eval exact_match(ignore_case=True, ignore_punctuation=True) on the stripped reply
LOWER_NO_PUNCTUATION = [
    ("Yes.", "yes", "period deleted"),
    (" T-Shirt! ", "tshirt", "stripped, lower-cased, inner hyphen deleted (not replaced by a space)"),
    ("don't", "dont", "apostrophe deleted"),
    ("3.5", "35", "a decimal point is punctuation too"),
    ("left side", "left side", "spaces stay"),
    ("Ça va?", "ça va", "only ASCII punctuation; non-ASCII letters lower-cased"),
    ("...", "", "nothing left"),
]


def _ids(rows: list[tuple[str, str, str]]) -> list[str]:
    return [f"{r[0]!r}: {r[2]}" for r in rows]


@pytest.mark.parametrize(("text", "expected", "why"), RSTRIP_PERIOD_LOWER, ids=_ids(RSTRIP_PERIOD_LOWER))
def test_rstrip_period_lower(text: str, expected: str, why: str) -> None:
    assert rstrip_period_lower(text) == expected, why


@pytest.mark.parametrize(("text", "expected", "why"), LOWER_NO_PUNCTUATION, ids=_ids(LOWER_NO_PUNCTUATION))
def test_lower_no_punctuation(text: str, expected: str, why: str) -> None:
    assert lower_no_punctuation(text) == expected, why


LLAVA = exact_match(rstrip_period_lower)  # GQA eval.py compares with the raw answer
LMMS = exact_match(lower_no_punctuation, lower_no_punctuation)  # both sides normalised

SCORES: list[tuple[str, Callable[[str, Sample], Scored], str, str, Scored, str]] = [
    ("llava", LLAVA, "Yes.", "yes", Scored("yes", 1.0, "rstrip_period_lower"), "period stripped"),
    ("llava", LLAVA, "The woman.", "woman", Scored("the woman", 0.0, "rstrip_period_lower"), "extra word"),
    ("llava", LLAVA, "Blue!", "blue", Scored("blue!", 0.0, "rstrip_period_lower"), "'!' stays"),
    ("llava", LLAVA, "T-shirt...", "t-shirt", Scored("t-shirt", 1.0, "rstrip_period_lower"), "periods only"),
    ("llava", LLAVA, "Yes", "Yes", Scored("yes", 0.0, "rstrip_period_lower"), "the answer is not lowered"),
    ("llava", LLAVA, "", "yes", Scored(None, 0.0, "unparsed"), "empty reply"),
    ("llava", LLAVA, "...", "yes", Scored(None, 0.0, "unparsed"), "nothing left after the rule"),
    ("lmms", LMMS, "Blue!", "blue", Scored("blue", 1.0, "lower_no_punctuation"), "'!' deleted"),
    ("lmms", LMMS, "T-shirt.", "t-shirt", Scored("tshirt", 1.0, "lower_no_punctuation"), "both sides"),
    ("lmms", LMMS, "t shirt", "t-shirt", Scored("t shirt", 0.0, "lower_no_punctuation"), "space vs none"),
    ("lmms", LMMS, " Yes \n", "Yes", Scored("yes", 1.0, "lower_no_punctuation"), "stripped, both lowered"),
    ("lmms", LMMS, "!", "yes", Scored(None, 0.0, "unparsed"), "nothing left"),
]


@pytest.mark.parametrize(
    ("name", "scorer", "output", "target", "expected", "why"),
    SCORES,
    ids=[f"{r[0]} {r[2]!r} vs {r[3]!r}: {r[5]}" for r in SCORES],
)
def test_exact_match(
    name: str, scorer: Callable[[str, Sample], Scored], output: str, target: str, expected: Scored, why: str
) -> None:
    sample = Sample(id="q", images=(), question="?", target=target)
    assert scorer(output, sample) == expected, why


def test_scorer_names_say_the_rule() -> None:
    assert LLAVA.__qualname__ == "exact_match(rstrip_period_lower)"
    assert LMMS.__qualname__ == "exact_match(lower_no_punctuation, lower_no_punctuation)"
