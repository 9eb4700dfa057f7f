"""MME: readers for the release layouts and the HF snapshot, exact prompts, and the official aggregation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from evalkit.errors import InputError
from evalkit.records import Prediction
from evalkit.registry import get_task
from tests.support.fixtures import mme_items, write_mme, write_mme_parquet

MME = get_task("mme")


def test_release_layouts_read(tmp_path: Path) -> None:
    write_mme(tmp_path)
    ds = MME.load(tmp_path / "mme")
    assert ds.format == "authors"
    assert len(ds.samples) == 2 * len(mme_items())
    by_id = {s.id: s for s in ds.samples}
    nested = by_id["artwork/images/10002.jpg#0"]  # images/ + questions_answers_YN/ layout
    flat = by_id["code_reasoning/0020.png#1"]  # image next to its txt
    assert nested.target == "yes" and nested.meta == {
        "category": "artwork",
        "image_id": "artwork/images/10002.jpg",
    }
    assert Path(nested.images[0].path).name == "10002.jpg"
    assert flat.target == "no" and Path(flat.images[0].path).name == "0020.png"
    assert flat.question == "Is the image blue? Please answer yes or no."


def test_parquet_snapshot_reads_the_same_samples(tmp_path: Path) -> None:
    write_mme(tmp_path / "a")
    write_mme_parquet(tmp_path / "b")
    authors = MME.load(tmp_path / "a" / "mme")
    snapshot = MME.load(tmp_path / "b" / "mme")
    assert snapshot.format == "hf-parquet"
    key = lambda s: (s.id, s.question, s.target, s.meta["category"])  # noqa: E731
    assert sorted(map(key, authors.samples)) == sorted(map(key, snapshot.samples))


def test_prompts_per_protocol(tmp_path: Path) -> None:
    write_mme(tmp_path)
    by_id = {s.id: s for s in MME.load(tmp_path / "mme").samples}
    double = by_id["count/000000055072.png#1"]  # "Is the image red?  Please answer yes or no." (two spaces)
    short = "\nAnswer the question using a single word or phrase."
    assert MME.variant("llava").prompt(double) == "Is the image red?" + short
    # lmms-eval removes " Please answer yes or no." (one space), leaving the other space in place
    assert MME.variant("lmms-eval").prompt(double) == "Is the image red? " + short
    single = by_id["existence/000000006040.png#0"]
    assert (
        MME.variant("llava").prompt(single)
        == MME.variant("lmms-eval").prompt(single)
        == "Is the image red?" + short
    )
    assert (MME.variant("llava").max_new_tokens, MME.variant("lmms-eval").max_new_tokens) == (128, 16)
    assert MME.variant("llava").image_mode == "pad"


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    release = write_mme(tmp_path)
    txt = release / "existence" / "000000006040.txt"
    txt.write_text("Is it red? Please answer yes or no.\tYes\nbroken line without tab\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"000000006040\.txt:2: expected"):
        MME.load(tmp_path / "mme")


def test_missing_image_becomes_a_sample_error(tmp_path: Path) -> None:
    release = write_mme(tmp_path)
    (release / "existence" / "000000006040.png").unlink()
    bad = [s for s in MME.load(tmp_path / "mme").samples if s.error]
    assert len(bad) == 2 and "000000006040" in bad[0].error


def _pred(sid: str, subtask: str, image: str, correct: bool, parsed: bool = True) -> Prediction:
    return Prediction(
        id=sid,
        prompt="",
        output="",
        answer="yes" if parsed else None,
        score=float(correct),
        parse="exact" if parsed else "unparsed",
        meta={"category": subtask, "image_id": image, "target": "yes", "question": ""},
    )


def test_aggregate_by_hand() -> None:
    preds = [
        # existence: A both right, B one right, C unparsed + right -> acc 4/6, acc+ 1/3
        _pred("e/A#0", "existence", "e/A", True),
        _pred("e/A#1", "existence", "e/A", True),
        _pred("e/B#0", "existence", "e/B", True),
        _pred("e/B#1", "existence", "e/B", False),
        _pred("e/C#0", "existence", "e/C", False, parsed=False),
        _pred("e/C#1", "existence", "e/C", True),
        # OCR (perception, lower-cased key): both images fully right -> 100 + 100
        _pred("o/D#0", "OCR", "o/D", True),
        _pred("o/D#1", "OCR", "o/D", True),
        # code_reasoning (cognition): one of two right -> acc 50, acc+ 0
        _pred("c/E#0", "code_reasoning", "c/E", True),
        _pred("c/E#1", "code_reasoning", "c/E", False),
    ]
    expected_existence = 400 / 6 + 100 / 3  # 66.667 + 33.333 = 100.0
    for order in range(5):  # pairs split and shuffled (as across batches) give the same numbers
        shuffled = preds[:]
        random.Random(order).shuffle(shuffled)
        m = MME.aggregate_for("llava")(shuffled)
        assert m["existence_acc"] == pytest.approx(400 / 6)
        assert m["existence_acc_plus"] == pytest.approx(100 / 3)
        assert m["existence"] == pytest.approx(expected_existence)
        assert m["ocr"] == pytest.approx(200.0)
        assert m["code_reasoning"] == pytest.approx(50.0)
        assert m["perception"] == pytest.approx(expected_existence + 200.0)
        assert m["cognition"] == pytest.approx(50.0)
        assert m["total"] == pytest.approx(expected_existence + 250.0)
        assert (m["unparsed"], m["failed"]) == (1, 0)
