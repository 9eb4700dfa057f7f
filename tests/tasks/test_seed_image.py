"""SEED-Bench image: the authors' JSON (video rows skipped, type names from the file), exact prompts, the
two protocols' scoring, and the aggregation worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.backends.base import Failure
from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from tests.support.fixtures_mc import write_seed

SEED = get_task("seed_image")
MC = "\nAnswer with the option's letter from the given choices directly."


@pytest.fixture
def samples(tmp_path: Path) -> dict:
    write_seed(tmp_path)
    return {s.id: s for s in SEED.load(tmp_path / "seed_bench").samples}


def test_reads_image_questions_only(samples: dict, tmp_path: Path) -> None:
    assert list(samples) == ["101", "102", "103", "104", "105"]  # 201, 202 are video rows
    s = samples["103"]
    assert s.question == "Which colour fills picture 103?" and s.target == "D"
    assert s.meta["options"] == {"A": "yellow", "B": "red", "C": "blue", "D": "green"}
    assert s.meta["category"] == "Instance Attributes"  # id 3 as this file names it, not as the paper does
    assert samples["104"].meta["category"] == "Instance Location"
    assert Path(s.images[0].path) == (tmp_path / "seed_bench" / "SEED-Bench-image" / "103_2591111986.jpg")


def _edit(tmp_path: Path, change: dict) -> Path:
    folder = write_seed(tmp_path)
    path = folder / "SEED-Bench.json"
    data = json.loads(path.read_text())
    data["questions"][0] |= change
    path.write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data_id": "../../outside.jpg"}, "escapes the data folder"),
        ({"question_type_id": 42}, "question_type_id 42 is not in the file's question_type dict"),
        ({"answer": "E"}, "answer 'E' is not one of A-D"),
    ],
)
def test_bad_rows_are_errors(tmp_path: Path, change: dict, message: str) -> None:
    folder = _edit(tmp_path, change)
    with pytest.raises(InputError, match=message):
        SEED.load(folder)


def test_parquet_snapshot_is_refused_with_a_reason(tmp_path: Path) -> None:
    folder = write_seed(tmp_path)
    (folder / "data").mkdir()
    (folder / "data" / "test-00000-of-00001.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError, match=r"only the authors' SEED-Bench\.json"):
        SEED.load(folder)


def test_prompts_and_generation_settings(samples: dict) -> None:
    expected = "Which colour fills picture 102?\nA. green\nB. blue\nC. red\nD. yellow" + MC
    assert SEED.variant("llava").prompt(samples["102"]) == expected
    assert SEED.variant("lmms-eval").prompt(samples["102"]) == expected
    llava, lmms = SEED.variant("llava"), SEED.variant("lmms-eval")
    assert (llava.max_new_tokens, llava.image_mode) == (128, "pad")
    assert (lmms.max_new_tokens, lmms.image_mode) == (1024, "native")


@pytest.mark.parametrize(
    ("protocol", "output", "answer", "right"),
    [
        ("llava", "B", "B", True),
        ("llava", " B\n", "B", True),  # LLaVA strips the decoded reply
        ("llava", "B.", None, False),  # convert_seed_for_submission: text == answer, so "B." is wrong
        ("llava", "b", None, False),
        ("llava", "B. blue", None, False),
        ("llava", "A", "A", False),
        ("lmms-eval", "b. blue", "B", True),  # first character, case ignored
        ("lmms-eval", "B.", "B", True),
        ("lmms-eval", "Blue", "B", True),  # whatever the first character is
        ("lmms-eval", "The answer is B", "T", False),
        ("lmms-eval", "  ", None, False),
    ],
)
def test_scoring(samples: dict, protocol: str, output: str, answer: str | None, right: bool) -> None:
    task, variant = SEED, SEED.variant(protocol)
    p = make_prediction(task, variant, PROTOCOLS[protocol], samples["102"], "", output)  # target B
    assert (p.answer, p.score) == (answer, float(right))


def test_aggregate_by_hand(samples: dict) -> None:
    variant, protocol = SEED.variant("llava"), PROTOCOLS["llava"]
    outputs = {"101": "A", "102": "B.", "103": "D", "104": "B", "105": Failure("image not found")}
    preds = [make_prediction(SEED, variant, protocol, samples[i], "", o) for i, o in outputs.items()]
    assert SEED.aggregate_for("llava")(preds) == {
        "accuracy": 40.0,  # 101, 103 of 5
        "scene_understanding": 50.0,  # 101 right, 102 "B." wrong
        "instance_attributes": 100.0,  # 103
        "instance_location": 0.0,  # 104: B for A
        "text_understanding": 0.0,  # 105 failed
        "unparsed": 1,
        "failed": 1,
    }
