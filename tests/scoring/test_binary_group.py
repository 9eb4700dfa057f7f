"""Binary counts and grouping primitives on hand-counted cases."""

from __future__ import annotations

import pytest

from evalkit.scoring.binary import binary_counts
from evalkit.scoring.group import all_correct_rate, snake


def test_binary_counts_with_unparsed() -> None:
    pairs = [("yes", "yes"), ("yes", "no"), ("no", "no"), ("no", "yes"), ("yes", "yes"), (None, "yes")]
    c = binary_counts(pairs, positive="yes")
    # by hand: TP=2, FP=1, TN=1, FN=1, one unparsed (outside the four counts, wrong for accuracy)
    assert (c.tp, c.fp, c.tn, c.fn, c.unparsed, c.n) == (2, 1, 1, 1, 1, 6)
    assert c.accuracy == pytest.approx(3 / 6)
    assert c.precision == pytest.approx(2 / 3)
    assert c.recall == pytest.approx(2 / 3)
    assert c.f1 == pytest.approx(2 / 3)
    assert c.positive_ratio == pytest.approx(3 / 6)


def test_binary_counts_degenerate_denominators_are_zero() -> None:
    c = binary_counts([("no", "no"), ("no", "yes")], positive="yes")
    assert (c.precision, c.recall, c.f1) == (0.0, 0.0, 0.0)  # LLaVA's script would divide by zero here
    assert binary_counts([], positive="yes").accuracy == 0.0


def test_all_correct_rate_groups_by_key_not_order() -> None:
    items = [("a", 1), ("b", 1), ("a", 1), ("c", 0), ("b", 0), ("c", 1)]
    assert all_correct_rate(items, lambda x: x[0], lambda x: x[1] == 1) == pytest.approx(100 / 3)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("OCR", "ocr"),
        ("Instance Attributes", "instance_attributes"),
        ("Art & Design", "art_design"),
        ("l2-category", "l2_category"),
    ],
)
def test_snake(name: str, key: str) -> None:
    assert snake(name) == key
