"""MMMU validation: the per-subject snapshot reader, image order from `<image k>` markers, prompts, both
multiple-choice parsers, open answers, and instance-weighted discipline/subject accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest
from evalkit_tasks.mmmu_val import gold_answers

from evalkit.data.images import load_image
from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.records import Prediction
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from tests.support.fixtures import COLOURS
from tests.support.fixtures_hf_mc import MMMUItem, mmmu_items, write_mmmu

MMMU = get_task("mmmu_val")
MC = "\nAnswer with the option's letter from the given choices directly."
OPEN = "\nAnswer the question using a single word or phrase."


def _samples(tmp_path: Path) -> dict:
    write_mmmu(tmp_path)
    return {s.id: s for s in MMMU.load(tmp_path / "mmmu").samples}


def _colours(sample: Sample) -> list[str]:
    pixels = [load_image(ref).getpixel((0, 0)) for ref in sample.images]
    return [next(name for name, rgb in COLOURS.items() if rgb == px) for px in pixels]


def test_reads_validation_files_only(tmp_path: Path) -> None:
    ds = MMMU.load(write_mmmu(tmp_path))
    assert ds.format == "hf-parquet"
    assert sorted(s.id for s in ds.samples) == sorted(i.id for i in mmmu_items())  # no dev_/test_ rows
    assert {str(Path(p.path).parent.name) for s in ds.samples for p in s.images} == {
        "Accounting",
        "Art_Theory",
        "Math",
    }
    by_id = {s.id: s for s in ds.samples}
    theory = by_id["validation_Art_Theory_2"]
    assert theory.target == "C" and theory.meta["subject"] == "Art_Theory"
    assert theory.meta["discipline"] == "Art and Design" and theory.meta["question_type"] == "multiple-choice"
    assert theory.meta["options"] == {
        "A": "<image 2>",
        "B": "<image 3>",
        "C": "It's <image 1>",
    }  # quotes kept
    assert (
        by_id["validation_Accounting_1"].target == "1,000"
        and by_id["validation_Accounting_1"].meta["options"] == {}
    )
    assert by_id["validation_Math_3"].target == "['24/7', '3.429']"


def test_images_follow_marker_numbers(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    first = samples["validation_Art_Theory_1"]  # "Compare <image 2> with <image 1>"
    assert [r.column for r in first.images] == ["image_1", "image_2"]  # by k, as lmms-eval sorts them
    assert _colours(first) == ["red", "blue"]
    second = samples["validation_Art_Theory_2"]  # markers only inside the options; image_4 has none
    assert [r.column for r in second.images] == ["image_1", "image_2", "image_3"]
    assert _colours(second) == ["green", "red", "yellow"]
    assert "<image 2>" in MMMU.variant("llava").prompt(first)  # the marker text stays


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("['a', 'b'", "not a Python list literal"),
        ("__import__('os').system('touch /tmp/pwned')", "not a Python list literal"),
        ("'a'", "not a list"),
    ],
)
def test_options_are_parsed_as_literals_only(tmp_path: Path, options: str, message: str) -> None:
    write_mmmu(tmp_path, [MMMUItem("validation_Math_9", "<image 1> Q?", options, "A")])
    with pytest.raises(
        InputError, match=rf"Math/validation-00000-of-00001\.parquet: row 1: options is {message}"
    ):
        MMMU.load(tmp_path / "mmmu")


def test_unknown_subject_is_an_error(tmp_path: Path) -> None:
    write_mmmu(tmp_path, [MMMUItem("validation_Alchemy_1", "<image 1> Q?", "['a', 'b']", "A")])
    with pytest.raises(InputError, match="names no MMMU validation subject"):
        MMMU.load(tmp_path / "mmmu")


def test_prompts_both_protocols(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    mc = "Compare <image 2> with <image 1>. Which painting is older?\nA. The red one\nB. The blue one\n"
    mc += "C. Both are from 1900" + MC
    open_ = "<image 1> What is the total revenue in dollars?" + OPEN
    for protocol, gap in (
        ("llava", ""),
        ("lmms-eval", "\n"),
    ):  # lmms-eval: a blank line before the instruction
        variant = MMMU.variant(protocol)
        assert variant.prompt(samples["validation_Art_Theory_1"]) == mc.replace(MC, gap + MC)
        assert variant.prompt(samples["validation_Accounting_1"]) == open_.replace(OPEN, gap + OPEN)
        assert variant.max_new_tokens == 128
    assert (MMMU.variant("llava").image_mode, MMMU.variant("lmms-eval").image_mode) == ("pad", "native")


@pytest.mark.parametrize(
    ("answer", "golds"),
    [
        ("['24/7', '3.429']", ["24/7", "3.429"]),  # a list of strings written as a string: each item
        ("1,000", ["1,000"]),
        ("[1, 2]", ["[1, 2]"]),  # not a list of strings (an interval, say): one answer
        ("[unclosed", ["[unclosed"]),
    ],
)
def test_gold_answers(answer: str, golds: list[str]) -> None:
    assert gold_answers(answer) == golds


# (sample, output, llava (answer, score, rule), lmms-eval (answer, score, rule))
SCORED = [
    ("validation_Accounting_2", "A", ("A", 1.0, "mmmu_official"), ("A", 1.0, "mmmu_lmms")),
    ("validation_Accounting_2", "(A) $5", ("A", 1.0, "mmmu_official"), ("A", 1.0, "mmmu_lmms")),
    ("validation_Accounting_2", "A.$5", (None, 0.0, "unparsed"), ("A", 1.0, "mmmu_lmms")),  # "X." pass
    ("validation_Accounting_2", "I cannot tell", (None, 0.0, "unparsed"), (None, 0.0, "unparsed")),
    # open questions: the official rules under both protocols (lmms-eval 0.7.3 fixed 0.7.2's never-right
    # open questions); they differ on a gold written as a list in a string, which lmms-eval does not parse
    ("validation_Accounting_1", "The total revenue is $1,000.", ("1000.0", 1.0, "open_number"), None),
    ("validation_Accounting_1", "100", ("100.0", 0.0, "open_number"), None),
    ("validation_Math_1", "x = 3.5", ("3.5", 1.0, "open_number"), None),
    (
        "validation_Math_2",
        "It is the Pythagorean theorem.",
        ("the pythagorean theorem", 1.0, "open_text"),
        None,
    ),
    # gold "['24/7', '3.429']": llava reads the list; lmms-eval compares the whole string with the candidates
    # "24/7", 24.0 and 7.0 (the numbers in the reply), none of which contains it
    ("validation_Math_3", "24/7", ("24/7", 1.0, "open_text"), ("24/7 | 24.0 | 7.0", 0.0, "open_number")),
    (
        "validation_Math_3",
        "about 3.429",
        ("3.43", 1.0, "open_number"),
        ("about 3.429 | 3.43", 0.0, "open_number"),
    ),
    ("validation_Math_3", "", (None, 0.0, "unparsed"), None),
]


@pytest.mark.parametrize(("sid", "output", "llava", "lmms"), SCORED, ids=[f"{c[0]}:{c[1]!r}" for c in SCORED])
def test_scoring_per_protocol(
    tmp_path: Path, sid: str, output: str, llava: tuple, lmms: tuple | None
) -> None:
    sample = _samples(tmp_path)[sid]
    for protocol, expected in (("llava", llava), ("lmms-eval", lmms or llava)):
        p = make_prediction(MMMU, MMMU.variant(protocol), PROTOCOLS[protocol], sample, "", output)
        assert (p.answer, p.score, p.parse) == expected, protocol


@pytest.mark.parametrize(
    ("answer_list", "target", "output", "llava", "lmms"),
    [
        # a snapshot storing the golds as a list: each item is accepted under both protocols
        (["24", "24.0"], "['24', '24.0']", "24", ("24.0", 1.0, "open_number"), ("24.0", 1.0, "open_number")),
        (
            ["Paris", "paris city"],
            "['Paris', 'paris city']",
            "It is Paris.",
            ("paris", 1.0, "open_text"),
            None,
        ),
        # the same golds written as a string: llava parses the list, lmms-eval 0.7.3 does not
        (None, "['24', '24.0']", "24", ("24.0", 1.0, "open_number"), ("24.0", 0.0, "open_number")),
    ],
)
def test_open_gold_as_a_list(
    answer_list: list[str] | None, target: str, output: str, llava: tuple, lmms: tuple | None
) -> None:
    meta: dict[str, object] = {
        "question_type": "open",
        "options": {},
        "subject": "Math",
        "discipline": "Science",
    }
    if answer_list is not None:
        meta["answer_list"] = answer_list
    sample = Sample("validation_Math_9", (), "How many?", target, meta)
    for protocol, expected in (("llava", llava), ("lmms-eval", lmms or llava)):
        p = make_prediction(MMMU, MMMU.variant(protocol), PROTOCOLS[protocol], sample, "", output)
        assert (p.answer, p.score, p.parse) == expected, protocol


def _p(
    n: int, subject: str, discipline: str, score: float, answer: str | None = "x", error: str | None = None
) -> Prediction:
    return Prediction(
        id=f"validation_{subject}_{n}",
        prompt="",
        output="",
        answer=answer,
        score=score,
        parse="x",
        meta={"subject": subject, "discipline": discipline, "target": "A"},
        error=error,
    )


def test_instance_weighted_aggregation_by_hand() -> None:
    preds = [
        _p(1, "Math", "Science", 1.0),
        _p(2, "Math", "Science", 1.0),
        _p(3, "Math", "Science", 0.0),
        _p(1, "Physics", "Science", 0.0, answer=None),  # unparsed
        _p(1, "Art_Theory", "Art and Design", 1.0),
        _p(2, "Art_Theory", "Art and Design", 0.0, answer=None, error="image not found"),  # failed
    ]
    assert MMMU.aggregate_for("llava")(preds) == {
        "accuracy": 50.0,  # 3 of 6 questions
        "science": 50.0,  # 2 of 4 questions (not the mean of Math 66.7 and Physics 0)
        "art_and_design": 50.0,
        "math": pytest.approx(200 / 3),
        "physics": 0.0,
        "art_theory": 50.0,
        "unparsed": 1,
        "failed": 1,
    }
    assert MMMU.primary == "accuracy" and MMMU.primary_for("lmms-eval") == "accuracy"
