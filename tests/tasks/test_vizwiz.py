"""VizWiz: val/test files and the snapshot, exact prompts per protocol, M4C accuracy on hand-worked cases,
aggregation by answer type, and the server export (one entry per test question, or a clear error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.backends.base import Failure
from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.registry import get_task
from evalkit.reports.exports import export_vizwiz
from evalkit.runner import make_prediction
from tests.support.fixtures_vqa import (
    write_run,
    write_vizwiz_parquet,
    write_vizwiz_test,
    write_vizwiz_val,
)

VAL, TEST = get_task("vizwiz_val"), get_task("vizwiz_test")
SUFFIX = (
    "\nWhen the provided information is insufficient, respond with 'Unanswerable'."
    "\nAnswer the question using a single word or phrase."
)
V = "VizWiz_val_{:08d}.jpg"
T = "VizWiz_test_{:08d}.jpg"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_vizwiz_val(root)
    write_vizwiz_test(root)
    return root


@pytest.fixture(scope="module")
def val(root: Path) -> dict[str, Sample]:
    return {s.id: s for s in VAL.load(root / "vizwiz").samples}


# --- loading -----------------------------------------------------------------------------------------


def test_val_questions(val: dict[str, Sample], root: Path) -> None:
    assert list(val) == [V.format(n) for n in range(5)]  # the image file name is the id
    s = val[V.format(0)]
    assert s.meta["answers"] == ["Coca Cola"] * 3 + ["coke"] * 4 + ["coca cola"] * 2 + ["soda"]
    assert s.meta["answer_type"] == "other"
    assert s.images[0].path == str(root / "vizwiz" / "val" / V.format(0))
    # the most common answer once EvalAI-processed ("coca cola" x5 beats "coke" x4), as first written
    assert s.target == "Coca Cola"
    assert [val[V.format(n)].target for n in range(1, 5)] == ["yes", "two", "unanswerable", "unanswerable"]
    assert val[V.format(3)].meta["answer_type"] == "unanswerable"


def test_test_questions_have_no_answers(root: Path) -> None:
    samples = TEST.load(root / "vizwiz").samples
    assert [s.id for s in samples] == [T.format(n) for n in range(3)]
    assert all(s.target == "" and s.meta == {"answers": []} for s in samples)
    assert samples[2].images[0].path == str(root / "vizwiz" / "test" / T.format(2))


def test_snapshot_reads_the_same_questions(root: Path, tmp_path: Path) -> None:
    write_vizwiz_parquet(tmp_path)
    for task in (VAL, TEST):
        authors, snapshot = task.load(root / "vizwiz"), task.load(tmp_path / "vizwiz")
        assert (authors.format, snapshot.format) == ("authors", "hf-parquet")
        key = lambda s: (s.id, s.question, s.target, s.meta)  # noqa: E731
        assert [key(s) for s in snapshot.samples] == [key(s) for s in authors.samples]


def test_bad_entries_are_named(tmp_path: Path) -> None:
    folder = write_vizwiz_val(tmp_path)
    entries = json.loads((folder / "val.json").read_text())
    (folder / "val.json").write_text(json.dumps([*entries, {"image": "x.jpg", "question": "Q?"}]))
    with pytest.raises(InputError, match=r"val\.json: question 5: missing field\(s\) answers, answer_type"):
        VAL.load(folder)
    entries[1]["image"] = "../../../secret.jpg"
    (folder / "val.json").write_text(json.dumps(entries))
    with pytest.raises(InputError, match="escapes the data folder"):
        VAL.load(folder)


# --- prompts and scoring -----------------------------------------------------------------------------


def test_prompts_and_generation_settings(val: dict[str, Sample], root: Path) -> None:
    llava, lmms = VAL.variant("llava"), VAL.variant("lmms-eval")
    assert llava.prompt(val[V.format(1)]) == "IS THIS BLUE?" + SUFFIX  # LLaVA: the question as written
    # lmms-eval: str.capitalize(), first character upper and every other one lower
    assert lmms.prompt(val[V.format(1)]) == "Is this blue?" + SUFFIX
    assert lmms.prompt(val[V.format(2)]) == "How many fingers?" + SUFFIX
    shirt = TEST.load(root / "vizwiz").samples[1]
    assert TEST.variant("lmms-eval").prompt(shirt) == "What colour is this shirt?" + SUFFIX
    assert TEST.variant("llava").prompt(shirt) == "what colour is this SHIRT?" + SUFFIX
    for task in (VAL, TEST):
        assert (task.variant("llava").max_new_tokens, task.variant("llava").image_mode) == (128, "pad")
        assert (task.variant("lmms-eval").max_new_tokens, task.variant("lmms-eval").image_mode) == (
            1024,
            "native",
        )


# (image number, reply, compared answer, accuracy, why): EvalAI processing on the reply and all 10 answers,
# then the mean over annotators of min(1, matches among the other 9 / 3). Both protocols score alike.
CASES = [
    (0, "Soda", "soda", 0.3, "1 said soda: sees 0; 9 see 1 -> 1/3; (9/3)/10 = 0.3"),
    (0, "Coke.", "coke", 1.0, "'coke' x4: those 4 see 3, the 6 others 4 -> all 1"),
    (0, "coca-cola", "coca cola", 1.0, "'-' -> space: 'Coca Cola' x3 + 'coca cola' x2 = 5"),
    (1, "Yes", "yes", 1.0, "'yes' x8 + 'Yes.' = 9"),
    (1, "No", "no", 0.3, "1 match: 0.3"),
    (2, "2", "2", 1.0, "'two' -> '2': 4 + 3 = 7"),
    (2, "three", "3", 0.9, "3 match: 3 see 2 -> 2/3; 7 see 3 -> 1; (2 + 7)/10 = 0.9"),
    (3, "Unanswerable.", "unanswerable", 1.0, "7 match"),
    (4, "12/2024", "12 2024", 0.9, "'/' -> space on both sides: 3 match, 0.9"),
    (4, "December, 2024", "december 2024", 0.9, "',' removed, lower-cased: 3 match"),
    (4, "  ", "", 0.0, "blank: compared as '' (M4C does), which no annotator gave: 0"),
]


@pytest.mark.parametrize("protocol", ["llava", "lmms-eval"])
@pytest.mark.parametrize(("n", "reply", "answer", "score", "why"), CASES)
def test_accuracy_by_hand(
    val: dict[str, Sample], protocol: str, n: int, reply: str, answer: str | None, score: float, why: str
) -> None:
    scored = VAL.variant(protocol).score(reply, val[V.format(n)])
    assert (scored.answer, scored.parse) == (answer, "m4c"), why
    assert scored.score == pytest.approx(score), why


def predict(task_name: str, samples: dict[str, Sample], replies: dict, protocol: str = "llava") -> list:
    task = get_task(task_name)
    v = task.variant(protocol)
    return [
        make_prediction(task, v, PROTOCOLS[protocol], samples[i], v.prompt(samples[i]), r)
        for i, r in replies.items()
    ]


def test_aggregate_by_hand(val: dict[str, Sample]) -> None:
    replies = ["Soda", "Yes", "2", "Unanswerable", Failure("HTTP 500")]  # 0.3, 1, 1, 1, failed (0)
    records = predict("vizwiz_val", val, {V.format(n): r for n, r in enumerate(replies)})
    assert VAL.aggregate_for("llava")(records) == {
        "accuracy": 66.0,  # 3.3 / 5
        "number": 100.0,
        "other": 15.0,  # (0.3 + 0) / 2
        "unanswerable": 100.0,
        "yes_no": 100.0,
        "unparsed": 0,
        "failed": 1,
    }


def test_test_split_reports_counts_only(root: Path) -> None:
    samples = {s.id: s for s in TEST.load(root / "vizwiz").samples}
    records = predict(
        "vizwiz_test", samples, {T.format(0): "Soup.", T.format(1): "", T.format(2): Failure("x")}
    )
    assert [r.answer for r in records] == ["soup", "", None]
    assert TEST.aggregate_for("llava")(records) == {"unparsed": 0, "failed": 1, "answered": 1, "empty": 1}


# --- export ------------------------------------------------------------------------------------------


def test_export_one_entry_per_test_question(root: Path, tmp_path: Path) -> None:
    replies = {T.format(2): "Yes, it is on.", T.format(0): "A can of soup", T.format(1): "Red"}  # any order
    run = write_run(tmp_path / "run" / "vizwiz_test", "vizwiz_test", root / "vizwiz", replies)
    (path,) = export_vizwiz(run, tmp_path / "vizwiz.json")
    assert json.loads(path.read_text()) == [
        {"image": T.format(0), "answer": "can of soup"},  # article dropped
        {"image": T.format(1), "answer": "red"},
        {"image": T.format(2), "answer": "yes it is on"},  # ',' and '.' removed
    ]
    (default,) = export_vizwiz(run, tmp_path / "folder")
    assert default == tmp_path / "folder" / "vizwiz_test.json"


def test_export_needs_every_question(root: Path, tmp_path: Path) -> None:
    replies = {T.format(0): "Soup", T.format(2): Failure("HTTP 500")}  # 1 not run, 2 failed
    run = write_run(tmp_path / "run", "vizwiz_test", root / "vizwiz", replies)
    message = (
        r"2 of 3 VizWiz test questions have no answer \(1 not run, 1 failed; first: VizWiz_test_00000001"
    )
    with pytest.raises(InputError, match=message + r".*run the same `evalkit run` command again"):
        export_vizwiz(run, tmp_path / "x.json")
    val_run = write_run(tmp_path / "val", "vizwiz_val", root / "vizwiz", {V.format(0): "soda"})
    with pytest.raises(InputError, match=r"holds a vizwiz_val run; `export vizwiz` takes a run of"):
        export_vizwiz(val_run, tmp_path / "x.json")
