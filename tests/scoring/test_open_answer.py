"""MMMU open-answer scoring: hand-worked cases from the official eval_utils rules (input, expected, why)."""

from __future__ import annotations

import pytest

from evalkit.scoring.open_answer import (
    Candidate,
    extract_numbers,
    key_responses,
    normalize_str,
    open_match,
    parse_open_response,
)

NUMBERS: list[tuple[str, list[str], str]] = [
    ("1,000", ["1,000", "000"], "comma pattern; the plain pattern still finds the digits after the comma"),
    ("-2,500 and 1e-3", ["-2,500", "1e-3", "500", "-3"], "commas, then scientific, then plain (overlapping)"),
    ("3.50 or .5", ["3.50", ".5"], "decimals, with or without a leading digit"),
    ("1.5e3 meters", ["1.5e3", "1", "3"], "scientific; the plain pattern cannot take 1.5 (followed by e3)"),
    ("no numbers here", [], "nothing"),
]


@pytest.mark.parametrize(("text", "expected", "why"), NUMBERS, ids=[c[0] for c in NUMBERS])
def test_extract_numbers(text: str, expected: list[str], why: str) -> None:
    assert extract_numbers(text) == expected, why


NORMALISED: list[tuple[str, list[Candidate], str]] = [
    ("1,234.567", [1234.57], "commas dropped, rounded to 2 decimals"),
    ("3.14159", [3.14], "2 decimals"),
    ("1e3", [1000.0], "float() reads scientific notation"),
    (" Paris ", ["paris"], "stripped, lower-cased"),
    ("A", [" a", "a "], "one character: padded both ways, so it only matches at a word edge"),
    ("", [""], "empty stays empty (parse_open_response drops it)"),
]


@pytest.mark.parametrize(("text", "expected", "why"), NORMALISED, ids=[repr(c[0]) for c in NORMALISED])
def test_normalize_str(text: str, expected: list[Candidate], why: str) -> None:
    assert normalize_str(text) == expected, why


PARSED: list[tuple[str, list[str], list[Candidate], str]] = [
    ("1,000", ["1,000"], [1000.0, 0.0], "no indicator: the whole reply; '000' also counts"),
    ("The answer is 3.50.", ["3.50"], [3.5], "after 'is '; trailing '.' stripped; 3.50 and 3.5 are one"),
    ("So the result is 12 and thus x = 5", ["5"], [5.0], "shortest tail over all indicators ('=' -> '5')"),
    ("Therefore, the final answer is B", ["b"], [" b", "b "], "'is ' gives the shortest tail"),
    ("x = 2\ny = 3", ["3"], [3.0], "'=' only counts on the last line"),
    ("The value is 2.\nSo it is 4", ["2.", "4"], [2.0, 4.0], "one key part per line"),
    ("The result is ;", ["the result is ;"], ["the result is ;"], "a lone ';' tail is dropped: whole reply"),
    ("It is.", ["it is"], ["it is"], "'is' without a following space is no indicator"),
    ("A", ["a"], [" a", "a "], "a single letter"),
    ("1.5e3 meters", ["1.5e3 meters"], ["1.5e3 meters", 1500.0, 1.0, 3.0], "text first, then its numbers"),
    ("no numbers here", ["no numbers here"], ["no numbers here"], "text only"),
    ("", [""], [], "empty reply: no candidate"),
]


@pytest.mark.parametrize(("reply", "keys", "candidates", "why"), PARSED, ids=[repr(c[0]) for c in PARSED])
def test_parse_open_response(reply: str, keys: list[str], candidates: list[Candidate], why: str) -> None:
    assert key_responses(reply) == keys, why
    assert parse_open_response(reply) == candidates, why


MATCHED: list[tuple[str, list[str], str | None, float, str, str]] = [
    ("The answer is 3.50.", ["3.5"], "3.5", 1.0, "open_number", "equal as numbers"),
    ("about 1000 people", ["1,000"], "1000.0", 1.0, "open_number", "gold '1,000' is the number 1000"),
    ("1,000", ["1000"], "1000.0", 1.0, "open_number", "and the other way round"),
    ("It is 3.456", ["3.46"], "3.46", 1.0, "open_number", "both rounded to 2 decimals"),
    ("It is 3.4", ["3.46"], "3.4", 0.0, "open_number", "a different number; the candidate is shown"),
    ("The answer is 7", ["07"], "7.0", 1.0, "open_number", "'07' is the number 7"),
    ("The speed is 3e8 m/s", ["300000000"], "300000000.0", 1.0, "open_number", "scientific notation"),
    ("The answer is A", ["a"], " a", 1.0, "open_text", "single-character gold at a word edge"),
    ("banana", ["a"], "banana", 0.0, "open_text", "single-character gold never inside a word"),
    ("Pythagorean theorem", ["Pythagorean theorem"], "pythagorean theorem", 1.0, "open_text", "substring"),
    ("I think it is the pythagorean theorem here", ["Pythagorean theorem"], "the pythagorean theorem here",
     1.0, "open_text", "the gold inside the key part"),
    ("2 apples", ["2 apples"], "2 apples", 1.0, "open_text", "a text gold with a number in it"),
    ("It's open 24/7", ["24/7", "3.429"], "it's open 24/7", 1.0, "open_text", "list gold: any item"),
    ("It is 3.429 hours", ["24/7", "3.429"], "3.43", 1.0, "open_number", "list gold: the number item"),
    ("It is 5 hours", ["24/7", "3.429"], "5 hours | 5.0", 0.0, "open_number", "no match: all candidates"),
    ("", ["x"], None, 0.0, "unparsed", "no candidate at all"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "golds", "answer", "score", "rule", "why"), MATCHED, ids=[repr(c[0]) for c in MATCHED]
)
def test_open_match(
    reply: str, golds: list[str], answer: str | None, score: float, rule: str, why: str
) -> None:
    scored = open_match(reply, golds)
    assert (scored.answer, scored.score, scored.parse) == (answer, score, rule), why
