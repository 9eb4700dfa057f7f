"""VQAv2: the authors' files and the snapshot, exact prompts per protocol, the official and lmms-eval accuracy
on hand-worked cases, aggregation, and the EvalAI export read back entry by entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.backends.base import Failure
from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.registry import get_task
from evalkit.reports.exports import export_vqav2
from evalkit.runner import make_prediction
from tests.support.fixtures_vqa import (
    TEST2015_ORDER,
    ten,
    vqav2_val_items,
    write_run,
    write_vqav2_parquet,
    write_vqav2_testdev,
    write_vqav2_val,
)

VAL, TESTDEV = get_task("vqav2_val"), get_task("vqav2_testdev")
SHORT = "\nAnswer the question using a single word or phrase."


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_vqav2_val(root)
    write_vqav2_testdev(root)
    return root


@pytest.fixture(scope="module")
def val(root: Path) -> dict[str, Sample]:
    return {s.id: s for s in VAL.load(root / "vqav2").samples}


# --- loading -----------------------------------------------------------------------------------------


def test_val_questions_joined_with_their_annotations(val: dict[str, Sample], root: Path) -> None:
    assert list(val) == [str(i.question_id) for i in vqav2_val_items()]
    s = val["1003"]
    assert s.question == "How many people live here?" and s.target == "1000"  # multiple_choice_answer
    assert s.meta["answers"] == ["1,000"] * 5 + ["1000"] * 2 + ["thousand"] + ["many"] * 2
    assert (s.meta["answer_type"], s.meta["question_type"], s.meta["image_id"]) == ("number", "how many", 12)
    assert s.images[0].path == str(root / "coco" / "val2014" / "COCO_val2014_000000000012.jpg")
    # all 10 answers "Yes": the official code compares them raw, so the target is "Yes", not the file's "yes"
    assert val["1001"].target == "yes"


def test_testdev_questions_have_no_answers(root: Path) -> None:
    samples = TESTDEV.load(root / "vqav2").samples
    assert [s.id for s in samples] == ["2001", "2002", "2003", "2004", "2005"]
    assert all(s.target == "" and s.meta["answers"] == [] for s in samples)
    assert samples[0].images[0].path == str(root / "coco" / "test2015" / "COCO_test2015_000000000021.jpg")


def test_snapshot_reads_the_same_questions(root: Path, tmp_path: Path) -> None:
    write_vqav2_parquet(tmp_path)
    for task in (VAL, TESTDEV):
        authors, snapshot = task.load(root / "vqav2"), task.load(tmp_path / "vqav2")
        assert (authors.format, snapshot.format) == ("authors", "hf-parquet")
        key = lambda s: (s.id, s.question, s.target, s.meta)  # noqa: E731
        assert [key(s) for s in snapshot.samples] == [key(s) for s in authors.samples]


def test_a_question_without_annotation_is_named(tmp_path: Path) -> None:
    folder = write_vqav2_val(tmp_path)
    path = folder / "v2_mscoco_val2014_annotations.json"
    doc = json.loads(path.read_text())
    doc["annotations"] = [a for a in doc["annotations"] if a["question_id"] != 1004]
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"annotations\.json: no annotation for question 1004"):
        VAL.load(folder)
    (folder / "v2_OpenEnded_mscoco_val2014_questions.json").write_text("[]")
    with pytest.raises(InputError, match=r"questions\.json: expected \{'questions'"):
        VAL.load(folder)


def test_missing_images_folder_is_named(tmp_path: Path) -> None:
    write_vqav2_testdev(tmp_path)
    with pytest.raises(InputError, match=r"COCO val2014.*coco/val2014"):
        VAL.load(tmp_path / "vqav2")


# --- prompts and scoring -----------------------------------------------------------------------------


def test_prompts_and_generation_settings(val: dict[str, Sample]) -> None:
    for task in (VAL, TESTDEV):
        llava, lmms = task.variant("llava"), task.variant("lmms-eval")
        assert (llava.max_new_tokens, llava.image_mode) == (128, "pad")
        assert (lmms.max_new_tokens, lmms.image_mode) == (16, "native")
    for protocol in ("llava", "lmms-eval"):
        assert VAL.variant(protocol).prompt(val["1002"]) == "How many dogs are there?" + SHORT


# (question, reply, protocol, compared answer, accuracy, why). Accuracy = mean over the 10 annotators of
# min(1, matches among the other 9 / 3).
CASES = [
    ("1001", "yes", "llava", "yes", 1.0, "10 identical 'yes': compared raw, each sees 9: min(1, 3)"),
    ("1001", "Yes", "llava", "yes", 1.0, "LLaVA's path lower-cases the reply first (EvalAI processor)"),
    ("1001", "Yes.", "llava", "yes", 1.0, "... and drops the final period, before the raw comparison"),
    ("1001", " yes\n", "lmms-eval", "yes", 1.0, "lmms-eval processes both sides always: 10 x 'yes'"),
    ("1002", "Two", "llava", "2", 1.0,
     "'2' x4 + 'two'->'2' x3 = 7: a matching annotator sees 6, the others 7, min(1, n/3) = 1 for all"),
    ("1002", "3", "llava", "3", 0.6, "2 said '3': each sees 1 -> 1/3; 8 see 2 -> 2/3; (2/3 + 16/3)/10 = 0.6"),
    ("1002", "2 dogs", "lmms-eval", "2 dogs", 0.3, "1 said it: sees 0; 9 see 1 -> 1/3; (9/3)/10 = 0.3"),
    ("1003", "1,000", "llava", "1000", 1.0, "digit,digit comma: deleted; '1,000' x5 + '1000' x2 = 7"),
    ("1003", "thousand", "llava", "thousand", 0.3, "1 match: (0 + 9 x 1/3)/10 = 0.3"),
    ("1004", "3.5.", "llava", "3.5", 1.0, "a period before a digit stays, the final one goes; 6 match"),
    ("1005", "The man's.", "llava", "man 's", 0.0,
     "the EvalAI processor splits the possessive ('s -> ' 's); the answers keep \"man's\": no match"),
    ("1005", "The man's.", "lmms-eval", "man's", 1.0, "'the' dropped, apostrophe kept: 5 + 'the man's' x3"),
    ("1005", "mans", "llava", "mans", 0.6, "2 match: (2 x 1/3 + 8 x 2/3)/10 = 0.6"),
    ("1006", "T-Shirt", "llava", "t shirt", 1.0, "'-' -> space, lower-cased: 4 + 2 + 'a t-shirt' x2 = 8"),
    ("1006", "tshirt", "lmms-eval", "tshirt", 0.6, "2 match: 0.6 as above"),
    ("1007", "dont know", "llava", "don't know", 1.0, "contraction: 'dont know' x3 + 'don't know' x4 = 7"),
    ("1007", "no", "llava", "no", 0.9, "3 match: 3 see 2 -> 2/3; 7 see 3 -> 1; (2 + 7)/10 = 0.9"),
    ("1008", "Blue", "llava", "blue", 1.0, "'blue' x3 + 'Blue' x2 + 'the blue' = 6"),
    ("1008", "The.", "llava", "", 0.0, "empty once processed: an answer (wrong), not an unparsed reply"),
    ("1008", "", "lmms-eval", "", 0.0, "empty reply: compared as '' like any answer; nobody said it: 0"),
]  # fmt: skip


@pytest.mark.parametrize(("qid", "reply", "protocol", "answer", "score", "why"), CASES)
def test_accuracy_by_hand(
    val: dict[str, Sample], qid: str, reply: str, protocol: str, answer: str | None, score: float, why: str
) -> None:
    scored = VAL.variant(protocol).score(reply, val[qid])
    assert scored.answer == answer, why
    assert scored.score == pytest.approx(score), why
    rule = "vqa_submission" if protocol == "llava" else "vqa_always_processed"
    assert scored.parse == rule


# An empty reply on a question where some annotators' answers process to "" ("the", "a"): the reference
# evaluations compare "" with the processed answers, so it earns their credit.
EMPTY_CASES = [
    # answers differ, so both sides are processed: "the" x2 -> "". The 2 matching annotators see 1 other
    # -> 1/3; the 8 others see 2 -> 2/3: (2/3 + 16/3) / 10 = 0.6
    (ten(("the", 2), ("white", 8)), "llava", 0.6),
    (ten(("the", 2), ("white", 8)), "lmms-eval", 0.6),
    # "a" x1 + "the" x3 = 4 match: each sees 3, the others 4 -> all 1
    (ten(("a", 1), ("the", 3), ("white", 6)), "lmms-eval", 1.0),
    # all ten "the": the official evaluation compares raw strings, "" != "the": 0 (LLaVA's path)
    (ten(("the", 10)), "llava", 0.0),
]


@pytest.mark.parametrize(("answers", "protocol", "score"), EMPTY_CASES)
def test_empty_reply_against_answers_that_process_to_nothing(
    answers: tuple[str, ...], protocol: str, score: float
) -> None:
    sample = Sample("9001", (), "What colour is it?", "white", {"answers": list(answers)})
    for reply in ("", "  "):
        scored = VAL.variant(protocol).score(PROTOCOLS[protocol].process(reply), sample)
        assert (scored.answer, scored.score) == ("", pytest.approx(score))


def predict(task_name: str, samples: dict[str, Sample], replies: dict, protocol: str) -> list:
    task = get_task(task_name)
    v = task.variant(protocol)
    return [
        make_prediction(task, v, PROTOCOLS[protocol], samples[i], v.prompt(samples[i]), r)
        for i, r in replies.items()
    ]


REPLIES = {
    "1001": "yes", "1002": "Two", "1003": "1,000", "1004": "3", "1005": "The man's.", "1006": "T-Shirt",
    "1007": "dont know", "1008": "The.",
}  # fmt: skip


def test_aggregate_by_hand(val: dict[str, Sample]) -> None:
    # scores: 1001 1, 1002 1, 1003 1, 1004 0.6, 1005 0 (llava: "man 's") / 1 (lmms-eval), 1006 1, 1007 1,
    # 1008 0 ("The." normalises to "", which no annotator gave: wrong, but an answer, so not unparsed)
    llava = VAL.aggregate_for("llava")(predict("vqav2_val", val, REPLIES, "llava"))
    assert llava == {
        "accuracy": 70.0,  # 5.6 / 8
        "number": 86.666667,  # (1 + 1 + 0.6) / 3
        "other": 50.0,  # (0 + 1 + 1 + 0) / 4
        "yes_no": 100.0,
        "unparsed": 0,
        "failed": 0,
    }
    records = predict("vqav2_val", val, REPLIES | {"1008": Failure("HTTP 500")}, "lmms-eval")
    lmms = VAL.aggregate_for("lmms-eval")(records)
    assert lmms == {
        "accuracy": 82.5,
        "number": 86.666667,
        "other": 75.0,
        "yes_no": 100.0,
        "unparsed": 0,
        "failed": 1,
    }


def test_testdev_reports_counts_only(root: Path) -> None:
    samples = {s.id: s for s in TESTDEV.load(root / "vqav2").samples}
    replies = {"2001": "Yes.", "2002": "Two dogs", "2003": Failure("HTTP 500"), "2004": "the", "2005": "?"}
    records = predict("vqav2_testdev", samples, replies, "llava")
    assert [r.answer for r in records] == ["yes", "2 dogs", None, "", ""]
    assert TESTDEV.aggregate_for("llava")(records) == {"unparsed": 0, "failed": 1, "answered": 2, "empty": 2}


# --- export ------------------------------------------------------------------------------------------

TESTDEV_REPLIES = {
    "2001": "Yes.",
    "2002": "Two dogs",
    "2003": Failure("HTTP 500"),
    "2004": "A Man's hat?",
    "2005": "?",
}
EXPECTED = {3001: "", 2001: "yes", 2002: "2 dogs", 3002: "", 2003: "", 2004: "man 's hat", 2005: ""}


def test_export_lists_every_test2015_question(root: Path, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run" / "vqav2_testdev", "vqav2_testdev", root / "vqav2", TESTDEV_REPLIES)
    with pytest.raises(
        InputError, match=r"1 of 5 VQAv2 test-dev questions have no answer \(0 not run, 1 failed"
    ):
        export_vqav2(run, tmp_path / "out" / "vqav2.json")  # question 2003 failed: no silent blank
    (path,) = export_vqav2(run, tmp_path / "out" / "vqav2.json", allow_missing=True)
    entries = json.loads(path.read_text())
    assert [e["question_id"] for e in entries] == TEST2015_ORDER  # every id once, in the file's order
    for entry in entries:
        assert set(entry) == {"question_id", "answer"} and isinstance(entry["question_id"], int)
        # EvalAI processing: "Yes." -> yes, "Two dogs" -> 2 dogs, "A Man's hat?" -> man 's hat; failed -> ""
        assert entry["answer"] == EXPECTED[entry["question_id"]], entry
    (default,) = export_vqav2(run, tmp_path / "folder", allow_missing=True)
    assert default == tmp_path / "folder" / "vqav2_testdev.json" and default.read_text() == path.read_text()


def test_export_of_a_partial_run_and_from_a_snapshot(root: Path, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", "vqav2_testdev", root / "vqav2", {"2004": "Two"})
    with pytest.raises(InputError, match=r"4 of 5 VQAv2 test-dev questions have no answer \(4 not run"):
        export_vqav2(run, tmp_path / "a.json")
    (path,) = export_vqav2(run, tmp_path / "a.json", allow_missing=True)
    assert json.loads(path.read_text()) == [
        {"question_id": q, "answer": "2" * (q == 2004)} for q in TEST2015_ORDER
    ]
    write_vqav2_parquet(tmp_path / "hf")  # --data-root: test2015 ids from the snapshot's test split
    (path,) = export_vqav2(run, tmp_path / "b.json", data_root=tmp_path / "hf", allow_missing=True)
    assert [e["question_id"] for e in json.loads(path.read_text())] == TEST2015_ORDER


def test_export_refuses_what_it_cannot_place(root: Path, tmp_path: Path) -> None:
    run = write_run(tmp_path / "val", "vqav2_val", root / "vqav2", {"1001": "yes"})
    with pytest.raises(InputError, match=r"holds a vqav2_val run; `export vqav2` takes a run of"):
        export_vqav2(run, tmp_path / "x.json")
    (run / "metrics.json").unlink()  # no record of the task: the ids still tell
    with pytest.raises(InputError, match=r"record '1001' is no VQAv2 test2015 question"):
        export_vqav2(run, tmp_path / "x.json", data_root=root)
    run = write_run(tmp_path / "td", "vqav2_testdev", root / "vqav2", {"2001": "yes"})
    (run / "metrics.json").unlink()  # an unfinished run: where its data is must be given
    with pytest.raises(InputError, match=r"metrics\.json: not found.*--data-root"):
        export_vqav2(run, tmp_path / "x.json")
    assert export_vqav2(run, tmp_path / "x.json", data_root=root, allow_missing=True)[0].exists()
