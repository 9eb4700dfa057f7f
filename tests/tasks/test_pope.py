"""POPE: readers, prompts, per-split metrics by hand, and LLaVA's question-id numbering."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.records import Prediction
from evalkit.registry import get_task
from tests.support.fixtures import pope_items, write_pope, write_pope_parquet

POPE = get_task("pope")


def test_authors_files_and_snapshot_agree(tmp_path: Path) -> None:
    write_pope(tmp_path / "a")
    write_pope_parquet(tmp_path / "b")
    authors = POPE.load(tmp_path / "a" / "pope")
    snapshot = POPE.load(tmp_path / "b" / "pope")
    assert (authors.format, snapshot.format) == ("authors", "hf-parquet")
    key = lambda s: (s.id, s.question, s.target, s.meta["category"])  # noqa: E731
    assert sorted(map(key, authors.samples)) == sorted(map(key, snapshot.samples))
    assert len(authors.samples) == len(pope_items())
    first = next(s for s in authors.samples if s.id == "adversarial/1")
    assert first.images[0].path.endswith("coco/val2014/COCO_val2014_000000000101.jpg")


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    folder = write_pope(tmp_path)
    path = folder / "coco_pope_random.json"
    path.write_text(path.read_text() + '{"question_id": 9, "image": "x.jpg", "text": "Is it?"\n')
    with pytest.raises(InputError, match=r"coco_pope_random\.json:4: malformed JSON"):
        POPE.load(folder)


def test_image_path_cannot_escape_the_data_root(tmp_path: Path) -> None:
    folder = write_pope(tmp_path)
    (folder / "coco_pope_random.json").write_text(
        '{"question_id": 1, "image": "../../../etc/passwd", "text": "Is it?", "label": "yes"}\n'
    )
    with pytest.raises(InputError, match="escapes"):
        POPE.load(folder)


def test_prompts() -> None:
    s = Sample(id="random/1", images=(), question=" Is there a dog in the image? ", target="yes")
    short = "\nAnswer the question using a single word or phrase."
    assert (
        POPE.variant("llava").prompt(s) == " Is there a dog in the image? " + short
    )  # LLaVA keeps text as is
    assert POPE.variant("lmms-eval").prompt(s) == "Is there a dog in the image?" + short


def test_llava_question_ids_map_to_splits() -> None:
    assert POPE.external_id is not None
    assert POPE.external_id("1") == "adversarial/1"
    assert POPE.external_id("3000") == "adversarial/3000"
    assert POPE.external_id("10000001") == "random/1"
    assert POPE.external_id("10002910") == "random/2910"
    assert POPE.external_id("20000001") == "popular/1"


def _p(split: str, n: int, answer: str | None, target: str) -> Prediction:
    return Prediction(
        id=f"{split}/{n}",
        prompt="",
        output="",
        answer=answer,
        score=float(answer == target),
        parse="x",
        meta={"category": split, "target": target},
    )


def test_aggregate_by_hand() -> None:
    preds = [
        # adversarial: TP, FP, TN, FN -> acc 50, P 50, R 50, F1 50, yes_ratio 50
        _p("adversarial", 1, "yes", "yes"),
        _p("adversarial", 2, "yes", "no"),
        _p("adversarial", 3, "no", "no"),
        _p("adversarial", 4, "no", "yes"),
        # popular: TP, TP, TN, unparsed(gold yes) -> acc 75, P 100, R 100 (unparsed outside), F1 100, yes 50
        _p("popular", 1, "yes", "yes"),
        _p("popular", 2, "yes", "yes"),
        _p("popular", 3, "no", "no"),
        _p("popular", 4, None, "yes"),
        # random: all "no" -> acc 50, P 0 (no positives predicted), R 0, F1 0, yes 0
        _p("random", 1, "no", "yes"),
        _p("random", 2, "no", "no"),
    ]
    m = POPE.aggregate_for("llava")(preds)
    assert [m[f"adversarial_{k}"] for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")] == [
        50.0
    ] * 5
    assert m["popular_accuracy"] == 75.0 and m["popular_precision"] == 100.0 and m["popular_recall"] == 100.0
    assert m["popular_f1"] == 100.0 and m["popular_yes_ratio"] == 50.0
    assert (m["random_accuracy"], m["random_precision"], m["random_f1"], m["random_yes_ratio"]) == (
        50,
        0,
        0,
        0,
    )
    assert m["f1"] == pytest.approx((50 + 100 + 0) / 3)
    assert m["accuracy"] == pytest.approx((50 + 75 + 50) / 3)
    # pooled over all 10: TP 3, FP 1, TN 3, FN 2, unparsed 1 -> acc 60, P 75, R 60
    assert (m["all_accuracy"], m["all_precision"], m["all_recall"]) == (60.0, 75.0, 60.0)
    assert m["unparsed"] == 1


def test_snapshot_with_other_configs_reads_the_default_one(tmp_path: Path) -> None:
    folder = write_pope_parquet(tmp_path)  # pope/data/test-00000-of-00001.parquet
    full = tmp_path / "pope" / "Full"
    full.mkdir()
    (full / "random-00000-of-00001.parquet").write_bytes(
        (folder / "test-00000-of-00001.parquet").read_bytes()
    )
    assert len(POPE.load(tmp_path / "pope").samples) == len(pope_items())
