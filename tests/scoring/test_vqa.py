"""VQA normalisation and accuracy on hand-worked cases from the official rules."""

from __future__ import annotations

import pytest

from evalkit.scoring.vqa import (
    evalai_process,
    leave_one_out,
    m4c,
    process_digit_article,
    process_punctuation,
    vqa_always_processed,
    vqa_official,
)

PUNCT = [
    ("hello,world", "hello world", "',' touches no space and there is no digit,digit: replaced by a space"),
    ("1,000", "1000", "a digit,digit comma: every listed mark is deleted"),
    ("a, b", "a b", "', ' touches a space: deleted"),
    ("t-shirt", "t shirt", "'-' touches no space: a space"),
    ("man's", "man's", "the apostrophe is not in the list"),
    ("3.5", "3.5", "a period before a digit stays"),
    ("yes.", "yes", "other periods go"),
    ("e.g. this", "eg this", "both periods go"),
    ("(2)", " 2 ", "brackets become spaces (split later)"),
    (
        "what?!",
        "what  ",
        "each mark is tested on the original text, where neither touches a space: two spaces",
    ),
]


@pytest.mark.parametrize(("text", "expected", "why"), PUNCT, ids=[p[0] for p in PUNCT])
def test_process_punctuation(text: str, expected: str, why: str) -> None:
    assert process_punctuation(text) == expected, why


DIGIT = [
    ("Two Dogs", "2 dogs", "number words, lower-cased"),
    ("the cat", "cat", "article dropped"),
    ("a", "", "only an article: empty"),
    ("None", "0", "'none' is a number word here"),
    ("dont know", "don't know", "contraction"),
    ("Im here", "im here", "'Im' is a key, but keys are matched after lower-casing: never fires"),
    ("ten eleven", "10 eleven", "only zero..ten"),
    ("  a   big  one ", "big 1", "whitespace collapsed"),
]


@pytest.mark.parametrize(("text", "expected", "why"), DIGIT, ids=[d[0] for d in DIGIT])
def test_process_digit_article(text: str, expected: str, why: str) -> None:
    assert process_digit_article(text) == expected, why


EVALAI = [
    ("Man's hat?", "man 's hat", "lower, '?' removed, 's split"),
    ("1,000", "1000", "commas removed first"),
    ("Yes.", "yes", ""),
    ("Two\tapples\n", "2 apples", "tabs/newlines, number word"),
    ("Unanswerable", "unanswerable", "VizWiz's instruction word, lower-cased"),
    ("the t-shirt", "t shirt", "article, hyphen"),
]


@pytest.mark.parametrize(("text", "expected", "why"), EVALAI, ids=[e[0] for e in EVALAI])
def test_evalai_process(text: str, expected: str, why: str) -> None:
    assert evalai_process(text) == expected, why


def test_leave_one_out_by_hand() -> None:
    ten = ["a"] * 2 + ["b"] * 8
    # 2 matches: the 2 matching annotators see 1 other (1/3), the 8 others see 2 (2/3): (2/3 + 16/3) / 10
    assert leave_one_out("a", ten) == pytest.approx(0.6)
    three = ["a"] * 3 + ["b"] * 7  # (3 * 2/3 + 7 * 1) / 10
    assert leave_one_out("a", three) == pytest.approx(0.9)
    assert leave_one_out("a", ["a"] * 4 + ["b"] * 6) == 1.0
    assert leave_one_out("a", ["a"] + ["b"] * 9) == pytest.approx(9 * (1 / 3) / 10)
    assert leave_one_out("c", ten) == 0.0


def test_official_processes_only_when_answers_differ() -> None:
    # all 10 identical: raw comparison (after strip), so capitalisation and articles count
    assert vqa_official("Yes", ["yes"] * 10) == ("Yes", 0.0)
    assert vqa_official(" yes\n", ["yes"] * 10) == ("yes", 1.0)
    assert vqa_official("two", ["2"] * 10)[1] == 0.0
    # answers differ: both sides processed, "two" == "2" and "the dog" == "dog"
    mixed = ["2"] * 6 + ["two"] * 3 + ["3"]
    assert vqa_official("two", mixed) == ("2", 1.0)
    assert vqa_official("The dog.", ["dog"] * 9 + ["a dog"])[1] == 1.0


def test_lmms_eval_and_m4c_always_process() -> None:
    assert vqa_always_processed("Two", ["2"] * 10) == ("2", 1.0)
    assert m4c("Man's", ["man 's"] * 2 + ["man"] * 8)[1] == pytest.approx(0.6)
    assert m4c("1,000 dollars", ["1000 dollars"] * 10)[1] == 1.0
