"""Q-Bench dev: llvisionqa_dev.json (integer or named types) and the Q-Bench-HF snapshot, exact prompts,
GENERAL vs lmms-eval's MMMU-style parsing, aggregation per type and concern by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from tests.support.fixtures_mc import write_qbench, write_qbench_parquet

QB = get_task("qbench_dev")


@pytest.fixture
def samples(tmp_path: Path) -> dict:
    write_qbench(tmp_path)
    return {s.id: s for s in QB.load(tmp_path / "qbench").samples}


def test_reads_the_authors_json(samples: dict, tmp_path: Path) -> None:
    assert {i: s.target for i, s in samples.items()} == {"0": "A", "1": "B", "2": "D", "3": "B", "4": "B"}
    assert samples["1"].meta == {
        "options": {"A": "red", "B": "blue", "C": "green"},
        "type": "How",
        "concern": "Global Others",
    }
    assert (samples["3"].meta["type"], samples["3"].meta["concern"]) == ("Yes/No", "Local Others")
    assert Path(samples["4"].images[0].path) == tmp_path / "qbench" / "images" / "sub" / "00005.png"


def test_named_types_pass_through_and_snapshot_agrees(samples: dict, tmp_path: Path) -> None:
    write_qbench(tmp_path / "named", names=True)
    write_qbench_parquet(tmp_path / "hf")
    named = QB.load(tmp_path / "named" / "qbench")
    snapshot = QB.load(tmp_path / "hf" / "qbench")  # its test file is ignored
    assert snapshot.format == "hf-parquet"
    key = lambda s: (s.id, s.question, s.target, s.meta)  # noqa: E731
    assert (
        [key(s) for s in named.samples]
        == [key(s) for s in snapshot.samples]
        == list(map(key, samples.values()))
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"img_path": "../../escape.jpg"}, "escapes the data folder"),
        ({"correct_ans": "Maybe"}, "item 0: correct_ans 'Maybe' is not among the candidates"),
        ({"type": 7}, "item 0: 7 is neither a name nor an index"),
    ],
)
def test_bad_items_are_errors(tmp_path: Path, change: dict, message: str) -> None:
    folder = write_qbench(tmp_path)
    path = folder / "llvisionqa_dev.json"
    rows = json.loads(path.read_text())
    rows[0] |= change
    path.write_text(json.dumps(rows))
    with pytest.raises(InputError, match=message):
        QB.load(folder)


def test_prompts_and_generation_settings(samples: dict) -> None:
    assert QB.variant("llava").prompt(samples["1"]) == (
        "How is the colour of image 2?\nChoose between one of the options as follows:\n"
        "A. red\nB. blue\nC. green\n"
    )
    assert QB.variant("lmms-eval").prompt(samples["1"]) == (
        "How is the colour of image 2?\nA. red\nB. blue\nC. green\n"
        "Answer with the option's letter from the given choices directly.\n"
    )
    llava, lmms = QB.variant("llava"), QB.variant("lmms-eval")
    assert (llava.max_new_tokens, llava.image_mode) == (1024, "crop")
    assert (lmms.max_new_tokens, lmms.image_mode) == (32, "native")


@pytest.mark.parametrize(
    ("protocol", "output", "answer", "right"),
    [  # sample 1: target B ("blue") of A-C
        ("llava", "B", "B", True),
        ("llava", "blue", "B", True),  # the option text
        ("llava", "B) blue", "B", True),
        ("llava", "It is hard to say.", None, False),
        ("lmms-eval", "B", "B", True),
        ("lmms-eval", "blue", None, False),  # one word: MMMU reads option texts only past 5 words
        ("lmms-eval", "The colour of this image is clearly blue", "B", True),
        ("lmms-eval", "B.", "B", True),
        ("lmms-eval", "(C)", "C", False),
    ],
)
def test_scoring(samples: dict, protocol: str, output: str, answer: str | None, right: bool) -> None:
    p = make_prediction(QB, QB.variant(protocol), PROTOCOLS[protocol], samples["1"], "", output)
    assert (p.answer, p.score) == (answer, float(right))


def test_aggregate_by_hand(samples: dict) -> None:
    outputs = {"0": "A", "1": "blue", "2": "D", "3": "A", "4": "Hard to say."}
    preds = [
        make_prediction(QB, QB.variant("llava"), PROTOCOLS["llava"], samples[i], "", o)
        for i, o in outputs.items()
    ]
    assert QB.aggregate_for("llava")(preds) == {
        "accuracy": 60.0,  # 0, 1, 2 right; 3 wrong (A for B); 4 unparsed
        "yes_no": 50.0,  # 0 right, 3 wrong
        "how": 100.0,  # 1
        "what": 50.0,  # 2 right, 4 unparsed
        "global_distortion": 50.0,  # 0 right, 4 unparsed
        "global_others": 100.0,  # 1
        "local_distortion": 100.0,  # 2
        "local_others": 0.0,  # 3
        "unparsed": 1,
        "failed": 0,
    }
