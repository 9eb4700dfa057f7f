"""MMStar: options parsed from the question, exact prompts per protocol, both scorers, micro vs macro."""

from __future__ import annotations

from pathlib import Path

import pytest
from evalkit_tasks.mmstar import NO_OPTIONS, options_in_question

from evalkit.protocols import PROTOCOLS
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from tests.support.fixtures_hf_mc import write_mmstar

MMSTAR = get_task("mmstar")
MC = "\nAnswer with the option's letter from the given choices directly."
LMMS = "\nAnswer with the option's letter from the given choices directly"  # no final period


def _samples(tmp_path: Path) -> dict:
    write_mmstar(tmp_path)
    return {s.id: s for s in MMSTAR.load(tmp_path / "mmstar").samples}


OPTIONS = [
    ("Q?\nOptions: A: red, B: green", {"A": "red", "B": "green"}, "comma-separated"),
    ("Q?\nOptions: A: 1, 2 and 3, B: 4", {"A": "1, 2 and 3", "B": "4"}, "a comma inside an option text"),
    ("Q?\nOptions:\nA: cat\nB: dog\nC: bird", {"A": "cat", "B": "dog", "C": "bird"}, "one per line"),
    ("Q?\nOptions: A: x, C: y", {"A": "x, C: y"}, "letters must follow in sequence"),
    ("Q? Please answer yes or no.", NO_OPTIONS, "no options: A-D with empty texts"),
    ("Q?\nOptions: B: x", NO_OPTIONS, "must start at A"),
]


@pytest.mark.parametrize(("question", "expected", "why"), OPTIONS, ids=[c[2] for c in OPTIONS])
def test_options_in_question(question: str, expected: dict, why: str) -> None:
    assert options_in_question(question) == expected, why


def test_snapshot_reads_samples(tmp_path: Path) -> None:
    ds = MMSTAR.load(write_mmstar(tmp_path))
    assert ds.format == "hf-parquet" and [s.id for s in ds.samples] == ["0", "1", "2", "3", "4"]
    one = ds.samples[1]
    assert one.target == "B" and one.meta == {
        "options": {"A": "sports", "B": "a plain, blue field", "C": "food", "D": "music"},
        "category": "coarse perception",
        "l2_category": "image scene and topic",
    }
    assert ds.samples[4].meta["options"] == {"A": "", "B": "", "C": "", "D": ""}


def test_prompts_per_protocol(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    question = (
        "Which topic fits the image best?\nOptions: A: sports, B: a plain, blue field, C: food, D: music"
    )
    assert MMSTAR.variant("llava").prompt(samples["1"]) == question + MC
    assert MMSTAR.variant("lmms-eval").prompt(samples["1"]) == question + LMMS
    yes_no = "Is the mean of the bars above 10? Please answer yes or no."
    assert MMSTAR.variant("llava").prompt(samples["4"]) == yes_no + MC
    assert MMSTAR.variant("lmms-eval").prompt(samples["4"]) == "Is the mean of the bars above 10?" + LMMS
    llava, lmms = MMSTAR.variant("llava"), MMSTAR.variant("lmms-eval")
    assert (llava.max_new_tokens, llava.image_mode, lmms.max_new_tokens, lmms.image_mode) == (
        128,
        "pad",
        1024,
        "native",
    )


# question "1" (target B; options sports / a plain, blue field / food / music)
SCORED = [
    ("B", ("B", 1.0, "lone_letter"), ("B", 1.0, "mmstar_first_char")),
    ("b", (None, 0.0, "unparsed"), ("B", 1.0, "mmstar_first_char")),
    ("(B)", ("B", 1.0, "lone_letter"), ("B", 1.0, "mmstar_bracket")),
    ("Option B", ("B", 1.0, "lone_token"), ("B", 1.0, "mmstar_option_word")),
    ("The answer is B", ("B", 1.0, "answer_phrase"), ("B", 1.0, "mmstar_answer_is")),
    ("Answer: B", ("B", 1.0, "answer_phrase"), ("A", 0.0, "mmstar_first_char")),  # 'a' of 'answer'
    ("A plain, blue field", ("B", 1.0, "option_text"), ("A", 0.0, "mmstar_first_char")),
    ("I am not sure", (None, 0.0, "unparsed"), (None, 0.0, "unparsed")),
]


@pytest.mark.parametrize(("output", "llava", "lmms"), SCORED, ids=[repr(c[0]) for c in SCORED])
def test_scoring_per_protocol(tmp_path: Path, output: str, llava: tuple, lmms: tuple) -> None:
    sample = _samples(tmp_path)["1"]
    for protocol, expected in (("llava", llava), ("lmms-eval", lmms)):
        p = make_prediction(MMSTAR, MMSTAR.variant(protocol), PROTOCOLS[protocol], sample, "", output)
        assert (p.answer, p.score, p.parse) == expected, protocol


def test_micro_and_macro_by_hand(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    # 0 scene/topic right, 1 scene/topic unparsed, 2 emotion right, 3 geometry wrong, 4 statistics right
    outputs = {"0": "A", "1": "I am not sure", "2": "C", "3": "C", "4": "A"}
    variant = MMSTAR.variant("llava")
    records = [
        make_prediction(MMSTAR, variant, PROTOCOLS["llava"], samples[i], "", o) for i, o in outputs.items()
    ]
    assert MMSTAR.aggregate_for("llava")(records) == {
        "accuracy": 60.0,  # 3 of 5 questions
        "macro_accuracy": 62.5,  # l2 accuracies 50, 100, 0, 100
        "coarse_perception": pytest.approx(200 / 3),  # 2 of 3 questions
        "macro_coarse_perception": 75.0,  # (50 + 100) / 2
        "math": 50.0,
        "macro_math": 50.0,  # (0 + 100) / 2
        "l2_image_emotion": 100.0,
        "l2_image_scene_and_topic": 50.0,
        "l2_geometry": 0.0,
        "l2_statistical_reasoning": 100.0,
        "unparsed": 1,
        "failed": 0,
    }
    # lmms-eval reports the macro figures as the headline keys, keeping the micro ones under micro_
    lmms = MMSTAR.aggregate_for("lmms-eval")(records)
    assert (lmms["accuracy"], lmms["micro_accuracy"]) == (62.5, 60.0)
    assert (lmms["coarse_perception"], lmms["micro_coarse_perception"]) == (75.0, pytest.approx(200 / 3))
    assert "macro_accuracy" not in lmms and lmms["l2_geometry"] == 0.0
    assert MMSTAR.primary_for("llava") == MMSTAR.primary_for("lmms-eval") == "accuracy"
