"""Option lists as LLaVA reads MMBench cells, and circular passes, worked by hand."""

from __future__ import annotations

import math

from evalkit.data.mcq import circular_passes, is_missing, present


def test_present_stops_at_the_first_missing_cell() -> None:
    assert present(["cat", "dog", None, "fox"]) == ["cat", "dog"]
    assert present(["cat", math.nan]) == ["cat"]
    assert present(["cat", "NA", "fox"]) == ["cat"]  # pandas reads "NA" as NaN
    assert present(["cat", "n/a"]) == ["cat"]
    assert present(["cat", "nonE"]) == ["cat"]  # LLaVA's is_none: "none" in any case
    assert present(["cat", " NA"]) == ["cat", " NA"]  # pandas compares cells exactly
    assert present(["0", "False"]) == ["0", "False"]
    assert is_missing("") and is_missing("#N/A") and not is_missing("Nan bread")


def test_circular_passes_by_hand() -> None:
    # pass k shows the options rotated left by k; the answer letter follows its option
    passes = circular_passes(["red", "green", "blue"], "B")  # the answer is "green"
    assert passes == [
        (["red", "green", "blue"], "B"),
        (["green", "blue", "red"], "A"),
        (["blue", "red", "green"], "C"),
    ]
    assert circular_passes(["x", "y"], None) == [(["x", "y"], None), (["y", "x"], None)]
