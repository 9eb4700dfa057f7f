"""Streaming JSON (`jsonstream.json_list`) and the VQAv2 reader built on it: the same values as json.load, the
same samples, ids and fingerprint as the reader it replaced (kept below as it was), and malformed files
reported on one line with the file, line and byte - under the C parser and the pure-Python fallback."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import ijson
import pytest
from evalkit_tasks import vqav2

from evalkit.data import jsonstream
from evalkit.data.images import ImageRef, file_ref
from evalkit.data.jsonstream import json_list
from evalkit.data.readers import (
    LIST,
    TEXT,
    Dataset,
    FieldType,
    Sample,
    fingerprint,
    read_json,
    require_fields,
)
from evalkit.errors import InputError
from evalkit.registry import get_task

VAL, TESTDEV = get_task("vqav2_val"), get_task("vqav2_testdev")
QUESTIONS, ANNOTATIONS = "v2_OpenEnded_mscoco_val2014_questions.json", "v2_mscoco_val2014_annotations.json"
TESTDEV_QUESTIONS = "v2_OpenEnded_mscoco_test-dev2015_questions.json"
TEST_QUESTIONS = "v2_OpenEnded_mscoco_test2015_questions.json"


@pytest.fixture(params=["default", "python"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test once with the parser ijson picks here (its C one, where the wheel has it) and once with
    the pure-Python backend that ijson falls back to without it."""
    if request.param == "python":
        monkeypatch.setattr(jsonstream, "_parser", ijson.get_backend("python"))
    return request.param


def test_the_c_parser_is_what_ijson_uses_here() -> None:
    assert jsonstream.BACKEND == "yajl2_c"  # the wheel's C extension: what makes streaming as fast as json


def test_the_slow_fallback_says_so_on_a_large_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "big.json"
    path.write_text('{"questions": [1, 2]}')
    assert list(json_list(path, "questions", "-")) == [1, 2] and not caplog.records
    monkeypatch.setattr(jsonstream, "_parser", ijson.get_backend("python"))
    monkeypatch.setattr(jsonstream, "_SLOW_NOTICE", 10)  # bytes: this file counts as large
    assert list(json_list(path, "questions", "-")) == [1, 2]
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert str(path) in caplog.text and "no C parser" in caplog.text


# --- the reader before streaming, as it was (json.load of each file, then the same sample building) -----

LABEL_TYPES: dict[str, FieldType] = {"answers": LIST, "multiple_choice_answer": TEXT, "answer_type": TEXT,
                                     "question_type": TEXT}  # fmt: skip
IMAGES = {
    "val": ("val2014", "COCO_val2014_{:012d}.jpg"),
    "testdev": ("test2015", "COCO_test2015_{:012d}.jpg"),
}


def old_listed(path: Path, key: str, fields: dict[str, FieldType]) -> list[dict[str, Any]]:
    found = read_json(path)
    if not isinstance(found, dict) or not isinstance(found.get(key), list):
        raise InputError(f"{path}: expected {{{key!r}: [...]}} (the VQA {key} file)")
    for k, entry in enumerate(found[key]):
        require_fields(entry, f"{path}: {key[:-1]} {k}", fields)
    return found[key]


def old_sample(q: dict[str, Any], image: ImageRef, a: dict[str, Any] | None) -> Sample:
    answers = [str(x["answer"]) for x in a["answers"]] if a else []
    target = "" if a is None else answers[0] if len(set(answers)) == 1 else str(a["multiple_choice_answer"])
    meta = {"image_id": int(q["image_id"]), "answers": answers}
    if a is not None:
        meta |= {"answer_type": a["answer_type"], "question_type": a["question_type"]}
    return Sample(str(q["question_id"]), (image,), q["question"], target, meta)


def old_read_authors(folder: Path, split: str) -> Dataset:
    sub, name = IMAGES[split]
    images = folder.parent / "coco" / sub
    questions = folder / (QUESTIONS if split == "val" else TESTDEV_QUESTIONS)
    files = [questions]
    annotations: dict[int, dict[str, Any]] = {}
    if split == "val":
        files.append(folder / ANNOTATIONS)
        listed = old_listed(files[1], "annotations", {"question_id": int, **LABEL_TYPES})
        annotations = {int(a["question_id"]): a for a in listed}
    samples, refs = [], dict[int, ImageRef]()
    for q in old_listed(questions, "questions", {"question_id": int, "image_id": int, "question": TEXT}):
        a = annotations.get(int(q["question_id"]))
        assert split != "val" or a is not None
        if (image_id := int(q["image_id"])) not in refs:
            refs[image_id] = file_ref(images / name.format(image_id))
        samples.append(old_sample(q, refs[image_id], a))
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint(files))


# --- a fixture with the edge cases, written the ways such files are written ------------------------------

BIG = 2**53 + 1  # an id a float could not hold
QUESTIONS_TEXT = [  # (question_id, image_id, question)
    (0, 7, "Is this a café?"),
    (BIG, 7, 'What does the sign say: "Stop" \\ or /go/?'),
    (42, 2**40, "Wie viele Äpfel? 多少个苹果？ 🍎"),
    (43, 1, "Tab\there,\nnewline, and \u2028 a line separator"),
    (44, 1, ""),
]


def annotation(qid: int, image_id: int, k: int) -> dict[str, Any]:
    """Answers of every kind the files may hold: text, numbers (whole, decimal, exponent), escapes, emoji;
    optional fields (answer_confidence, answer_id) missing or null on some."""
    answers: list[Any] = [
        [2, 2.5, 1e3, -0, "2", "two", 10, 0.1, 2, 2],  # numbers: str() of what json.load gives
        ["café"] * 10,  # all identical: the target is the answer itself
        ["🍎 apple"] * 4 + ["äpfel", "苹果", 'say "hi"', "back\\slash", "a/b", ""],
        ["tab\tand\nnewline"] * 10,
        ["yes", "Yes", "YES"] + ["yes"] * 7,
    ][k]
    entries = [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)]
    del entries[0]["answer_confidence"]
    entries[1]["answer_id"] = None
    entries[2]["answer_id"] = 3.0
    return {
        "question_type": ["is this a", "what does the", "wie viele", "none of the above", "is"][k],
        "multiple_choice_answer": ["2", "café", "🍎 apple", "tab\tand\nnewline", "yes"][k],
        "answers": entries,
        "image_id": image_id,
        "answer_type": ["number", "other", "other", "other", "yes/no"][k],
        "question_id": qid,
        "extra": {"nested": [1, {"deep": [True, False, None]}], "ratio": 1.5e-7},
    }


def write_edge_cases(root: Path) -> Path:
    """val (questions pretty-printed with a BOM, raw UTF-8, list before the header; annotations ASCII with
    \\u escapes, in another order) plus test-dev and test2015 question files."""
    folder = root / "vqav2"
    folder.mkdir(parents=True)
    for sub in ("val2014", "test2015"):
        (root / "coco" / sub).mkdir(parents=True)
    questions = [
        {"image_id": i, "question": q, "question_id": qid, "note": None} for qid, i, q in QUESTIONS_TEXT
    ]
    doc = {"questions": questions, "info": {"year": 2017, "ok": True}, "data_subtype": "val2014"}
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    (folder / QUESTIONS).write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    annotations = [annotation(qid, i, k) for k, (qid, i, _) in enumerate(QUESTIONS_TEXT)][::-1]
    doc = {"info": {"description": "x"}, "license": {}, "annotations": annotations, "data_type": "mscoco"}
    text = json.dumps(doc).replace("/", "\\/")  # "\/": an escape json.dumps never writes
    text = text.replace('"answer": 1000.0', '"answer": 1e3').replace('"answer": 0,', '"answer": -0,')
    (folder / ANNOTATIONS).write_text(text, encoding="ascii")
    for name, ids in ((TESTDEV_QUESTIONS, [42, 0]), (TEST_QUESTIONS, [BIG, 42, 0, 43])):
        test = [{"question_id": qid, "image_id": 9, "question": f"Q{qid} é?"} for qid in ids]
        (folder / name).write_text(json.dumps({"info": {}, "questions": test}, indent=1), encoding="utf-8")
    return folder


def test_json_list_gives_what_json_load_gives(tmp_path: Path, backend: str) -> None:
    folder = write_edge_cases(tmp_path)
    for name, key in ((QUESTIONS, "questions"), (ANNOTATIONS, "annotations"), (TEST_QUESTIONS, "questions")):
        expected = json.loads((folder / name).read_text(encoding="utf-8-sig"))[key]
        streamed = list(json_list(folder / name, key, "-"))
        assert streamed == expected
        # same types too (== holds between 1000 and 1000.0, and a Decimal would print as 1E+3)
        assert repr(streamed) == repr(expected)
    path = tmp_path / "list.json"
    path.write_text('[{"a": 1}, 2.5, "x", null, [true]]')
    assert list(json_list(path, "", "a list")) == [{"a": 1}, 2.5, "x", None, [True]]


def test_streamed_samples_equal_the_json_load_reader_field_by_field(tmp_path: Path, backend: str) -> None:
    folder = write_edge_cases(tmp_path)
    for task, split in ((VAL, "val"), (TESTDEV, "testdev")):
        new, old = task.load(folder), old_read_authors(folder, split)
        assert (new.path, new.format, new.fingerprint) == (old.path, old.format, old.fingerprint)
        assert len(new.samples) == len(old.samples) == (5 if split == "val" else 2)
        for a, b in zip(new.samples, old.samples, strict=True):
            for field in dataclasses.fields(Sample):
                x, y = getattr(a, field.name), getattr(b, field.name)
                assert x == y and repr(x) == repr(y), (b.id, field.name)
    samples = {s.id: s for s in VAL.load(folder).samples}
    assert samples["0"].meta["answers"][:4] == ["2", "2.5", "1000.0", "0"]  # str() of json.load's values
    assert samples[str(BIG)].target == "café" and samples["42"].question.endswith("🍎")
    assert samples["42"].images[0].path.endswith(f"COCO_val2014_{2**40:012d}.jpg")
    assert vqav2.test2015_question_ids(folder) == [BIG, 42, 0, 43]


def test_the_fingerprint_is_still_the_files_bytes(tmp_path: Path) -> None:
    folder = write_edge_cases(tmp_path)
    names = sorted([QUESTIONS, ANNOTATIONS])  # sha256 over each file's name then bytes, in name order
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + (folder / name).read_bytes())
    assert VAL.load(folder).fingerprint == "sha256:" + digest.hexdigest()[:16]


# --- malformed files ---------------------------------------------------------------------------------


def one_line_error(folder: Path, task: Any = VAL) -> str:
    with pytest.raises(InputError) as caught:
        task.load(folder)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_truncated_file_is_named_with_its_end(tmp_path: Path, backend: str) -> None:
    folder = write_edge_cases(tmp_path)
    path = folder / ANNOTATIONS
    path.write_bytes(path.read_bytes()[:-40])  # a download cut short
    message = one_line_error(folder)
    assert message.startswith(f"{path}:1: malformed JSON at its end (")


def test_a_bad_token_far_into_a_file_gives_its_line_and_byte(tmp_path: Path, backend: str) -> None:
    folder = write_edge_cases(tmp_path)
    path = folder / TESTDEV_QUESTIONS
    many = [{"image_id": 1, "question": f"Question {k}?", "question_id": 1000 + k} for k in range(4000)]
    text = json.dumps({"questions": many}, indent=2)  # ~400 KB: past the parser's first chunks
    at = text.index('"question_id": 3900')
    text = text[:at] + "'question_id': 3900" + text[at + len('"question_id": 3900') :]
    path.write_text(text, encoding="utf-8")
    message = one_line_error(folder, TESTDEV)
    line = text[:at].count("\n") + 1
    stop = at if backend == "default" else at + 1  # the pure-Python lexer reads one byte ahead first
    assert message.startswith(f"{path}:{line}: malformed JSON at byte {stop} ("), message


def test_an_integer_beyond_64_bits_far_into_a_file_gives_its_line(tmp_path: Path) -> None:
    """The C parser (use_float=True, as json_list reads) refuses it; the parse that locates the error must
    read numbers the same way, or it runs past the number and reports the file's end."""
    many = [{"question_id": 1000 + k, "question": f"Question {k}?"} for k in range(4000)]
    many[3900]["question_id"] = 2**70
    text = json.dumps({"questions": many}, indent=2)  # ~300 KB: past the parser's first chunks
    path = tmp_path / "big-int.json"
    path.write_text(text, encoding="utf-8")
    at = text.index(str(2**70))
    line = text[:at].count("\n") + 1
    with pytest.raises(InputError) as caught:
        list(json_list(path, "questions", "-"))
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: malformed JSON at byte "), message
    assert "integer overflow" in message and "at its end" not in message
    offset = int(message.split("at byte ")[1].split(" ")[0])
    assert at <= offset <= at + len(str(2**70))


def test_bytes_that_are_not_utf8_are_named(tmp_path: Path, backend: str) -> None:
    folder = write_edge_cases(tmp_path)
    path = folder / QUESTIONS
    data = path.read_bytes()
    at = data.index("café".encode())
    path.write_bytes(data[:at] + b"caf\xe9" + data[at + 5 :])  # Latin-1 é
    line = data[:at].count(b"\n") + 1
    message = one_line_error(folder)
    assert message == f"{path}:{line}: not UTF-8 text (byte 0xe9 at byte {at + 3}); re-save the file as UTF-8"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('[{"question_id": 1}]', "a list, not the object holding it"),
        ('{"questions": {"item": {"question_id": 1}}}', "an object where the list belongs"),
        ('{"info": {"questions": []}}', "the key only nested deeper"),
        ("", "empty"),
    ],
)
def test_a_file_without_the_list_is_named(tmp_path: Path, backend: str, text: str, why: str) -> None:
    folder = write_edge_cases(tmp_path)
    (folder / TEST_QUESTIONS).write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        vqav2.test2015_question_ids(folder)
    message = str(caught.value)
    assert message.startswith(str(folder / TEST_QUESTIONS)) and "\n" not in message, why
    if text:
        assert message.endswith("expected {'questions': [...]} (the VQA questions file)"), why
