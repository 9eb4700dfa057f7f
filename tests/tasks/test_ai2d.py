"""AI2D: the lmms-lab snapshot reader, the exact prompt, both protocols' scoring and the accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from tests.support.fixtures_hf_mc import AI2DItem, ai2d_items, write_ai2d

AI2D = get_task("ai2d")
MC = "\nAnswer with the option's letter from the given choices directly."


def _samples(tmp_path: Path) -> dict:
    write_ai2d(tmp_path)
    return {s.id: s for s in AI2D.load(tmp_path / "ai2d").samples}


def test_snapshot_reads_targets_and_options(tmp_path: Path) -> None:
    write_ai2d(tmp_path)
    ds = AI2D.load(tmp_path / "ai2d")
    assert ds.format == "hf-parquet" and ds.fingerprint.startswith("sha256:")
    assert [s.id for s in ds.samples] == ["0", "1", "2", "3"]  # row positions: the dataset has no id
    assert [s.target for s in ds.samples] == ["A", "C", "B", "D"]  # "ABCD"[int(answer)]
    assert ds.samples[0].meta == {"options": {"A": "red", "B": "green", "C": "blue"}}
    assert [(r.kind, r.column, r.row) for r in ds.samples[1].images] == [("parquet", "image", 1)]


def test_answer_index_out_of_range_names_the_row(tmp_path: Path) -> None:
    write_ai2d(tmp_path, [*ai2d_items(), AI2DItem("Which?", ("x", "y"), "2", "red")])
    with pytest.raises(InputError, match=r"test-00000-of-00001\.parquet: row 5: answer '2'"):
        AI2D.load(tmp_path / "ai2d")


def test_prompt_is_the_same_for_both_protocols(tmp_path: Path) -> None:
    sample = _samples(tmp_path)["1"]
    expected = "What does the arrow show?\nA. eats\nB. is eaten by\nC. lives in\nD. grows" + MC
    assert AI2D.variant("llava").prompt(sample) == AI2D.variant("lmms-eval").prompt(sample) == expected
    llava, lmms = AI2D.variant("llava"), AI2D.variant("lmms-eval")
    assert (llava.max_new_tokens, llava.image_mode) == (128, "pad")
    assert (lmms.max_new_tokens, lmms.image_mode) == (16, "native")


# (output, llava (answer, score, rule), lmms-eval (answer, score, rule)) for question "1" (target C)
SCORED = [
    ("C", ("C", 1.0, "lone_letter"), ("C", 1.0, "lmms_exact_letter")),
    # both strip the reply first (LLaVA's loader; lmms-eval 0.7.3 before process_results)
    (" C", ("C", 1.0, "lone_letter"), ("C", 1.0, "lmms_exact_letter")),
    ("C\n", ("C", 1.0, "lone_letter"), ("C", 1.0, "lmms_exact_letter")),
    ("\nC", ("C", 1.0, "lone_letter"), ("C", 1.0, "lmms_exact_letter")),
    # lmms-eval removes the reasoning block first; llava reads the reply as it is
    ("<think>The answer is B? No.</think> C", ("B", 0.0, "answer_phrase"), ("C", 1.0, "lmms_exact_letter")),
    ("C. lives in", ("C", 1.0, "leading_letter"), ("C", 1.0, "lmms_letter_dot")),
    ("(c)", (None, 0.0, "unparsed"), ("C", 1.0, "lmms_exact_letter")),  # lower-case: no GENERAL form
    ("The answer is C", ("C", 1.0, "answer_phrase"), (None, 0.0, "unparsed")),
    ("It lives in the pond", ("C", 1.0, "option_text"), (None, 0.0, "unparsed")),
    ("B. is eaten by", ("B", 0.0, "leading_letter"), ("B", 0.0, "lmms_letter_dot")),
]


@pytest.mark.parametrize(("output", "llava", "lmms"), SCORED, ids=[repr(c[0]) for c in SCORED])
def test_scoring_per_protocol(tmp_path: Path, output: str, llava: tuple, lmms: tuple) -> None:
    sample = _samples(tmp_path)["1"]
    for protocol, expected in (("llava", llava), ("lmms-eval", lmms)):
        variant = AI2D.variant(protocol)
        p = make_prediction(AI2D, variant, PROTOCOLS[protocol], sample, "", output)
        assert (p.answer, p.score, p.parse) == expected, protocol


def test_aggregate_by_hand(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    outputs = {"0": "A", "1": "B", "2": "no idea", "3": "D"}  # right, wrong, unparsed, right
    variant = AI2D.variant("llava")
    records = [
        make_prediction(AI2D, variant, PROTOCOLS["llava"], samples[i], "", o) for i, o in outputs.items()
    ]
    assert AI2D.aggregate_for("llava")(records) == {"accuracy": 50.0, "unparsed": 1, "failed": 0}
    assert AI2D.primary_for("llava") == AI2D.primary_for("lmms-eval") == "accuracy"
