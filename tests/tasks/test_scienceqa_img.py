"""ScienceQA-IMG: test-split problems with an image from problems.json + pid_splits.json (or the lmms-lab
snapshot), exact prompts, LLaVA's and lmms-eval's parsing, aggregation by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from tests.support.fixtures_mc import write_sqa, write_sqa_parquet

SQA = get_task("scienceqa_img")
MC = "\nAnswer with the option's letter from the given choices directly."


@pytest.fixture
def samples(tmp_path: Path) -> dict:
    write_sqa(tmp_path)
    return {s.id: s for s in SQA.load(tmp_path / "scienceqa").samples}


def test_test_split_with_images_only(samples: dict, tmp_path: Path) -> None:
    # 5 has no image, 6 is val, 7 is train
    assert list(samples) == ["1", "2", "3", "4", "8"]
    assert {i: s.target for i, s in samples.items()} == {"1": "A", "2": "C", "3": "B", "4": "D", "8": "B"}
    assert samples["4"].meta["options"] == {
        "A": "red",
        "B": "green",
        "C": "blue",
        "D": "yellow",
        "E": "white",
    }
    assert samples["2"].meta["hint"] == "The figure is one flat colour." and samples["1"].meta["hint"] == ""
    assert Path(samples["8"].images[0].path) == tmp_path / "scienceqa" / "images" / "test" / "8" / "image.png"


def test_snapshot_reads_the_img_test_file_only(tmp_path: Path, samples: dict) -> None:
    write_sqa_parquet(tmp_path / "hf")
    ds = SQA.load(tmp_path / "hf" / "scienceqa")
    assert ds.format == "hf-parquet"
    assert [s.id for s in ds.samples] == ["test-0", "test-1", "test-2", "test-3", "test-4"]
    key = lambda s: (s.question, s.target, s.meta)  # noqa: E731
    assert [key(s) for s in ds.samples] == [key(s) for s in samples.values()]


def _edit(tmp_path: Path, pid: str, change: dict) -> Path:
    folder = write_sqa(tmp_path)
    problems = json.loads((folder / "problems.json").read_text())
    problems[pid] |= change
    (folder / "problems.json").write_text(json.dumps(problems))
    return folder


def test_image_path_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    folder = _edit(tmp_path, "3", {"image": "../../../../secret.png"})
    with pytest.raises(InputError, match="escapes the data folder"):
        SQA.load(folder)


def test_bad_answer_index_names_the_problem(tmp_path: Path) -> None:
    folder = _edit(tmp_path, "1", {"answer": 2})
    with pytest.raises(InputError, match=r"problem 1: answer 2 is no index into its 2 choices"):
        SQA.load(folder)


def test_split_pid_missing_from_problems(tmp_path: Path) -> None:
    folder = write_sqa(tmp_path)
    (folder / "pid_splits.json").write_text(json.dumps({"test": ["1", "99"]}))
    with pytest.raises(InputError, match=r"problem 99: listed in pid_splits\.json"):
        SQA.load(folder)


def test_prompts_and_generation_settings(samples: dict) -> None:
    plain = "Which colour is shown in figure 1?\nA. red\nB. blue" + MC
    hinted = (
        "Context: The figure is one flat colour.\nWhich colour is shown in figure 2?\n"
        "A. green\nB. yellow\nC. blue" + MC
    )
    for protocol in ("llava", "lmms-eval"):
        assert SQA.variant(protocol).prompt(samples["1"]) == plain
        assert SQA.variant(protocol).prompt(samples["2"]) == hinted
    llava, lmms = SQA.variant("llava"), SQA.variant("lmms-eval")
    assert (llava.max_new_tokens, llava.image_mode) == (1024, "crop")
    assert (lmms.max_new_tokens, lmms.image_mode) == (16, "native")


@pytest.mark.parametrize(
    ("protocol", "output", "answer", "right"),
    [  # sample 2: target C of A-C
        ("llava", "C", "C", True),
        ("llava", "C. blue", "C", True),
        ("llava", "C.blue", None, False),  # LLaVA wants ". " after the letter
        ("llava", "c", None, False),  # case matters to LLaVA
        ("llava", "E", "E", False),  # any of A-E is read, even with 3 options
        ("llava", "Because it is blue. The answer is C.", "C", True),
        ("lmms-eval", "c", "C", True),  # pred.lower() == target.lower()
        ("lmms-eval", "C.blue", "C", True),  # upper-case letter then "."
        ("lmms-eval", "c. blue", None, False),
        ("lmms-eval", "The answer is C.", None, False),
        ("lmms-eval", " B\n", "B", False),
    ],
)
def test_scoring(samples: dict, protocol: str, output: str, answer: str | None, right: bool) -> None:
    p = make_prediction(SQA, SQA.variant(protocol), PROTOCOLS[protocol], samples["2"], "", output)
    assert (p.answer, p.score) == (answer, float(right))


def test_aggregate_by_hand(samples: dict) -> None:
    outputs = {"1": "A", "2": "c", "3": "B. green", "4": "D", "8": "A"}
    for protocol, expected in (
        ("llava", {"accuracy": 60.0, "unparsed": 1, "failed": 0}),  # "c" unparsed, 8 wrong
        ("lmms-eval", {"accuracy": 80.0, "unparsed": 0, "failed": 0}),  # only 8 wrong
    ):
        variant = SQA.variant(protocol)
        preds = [
            make_prediction(SQA, variant, PROTOCOLS[protocol], samples[i], "", o) for i, o in outputs.items()
        ]
        assert SQA.aggregate_for("llava")(preds) == expected
