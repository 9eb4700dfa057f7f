"""VQAv2 (Goyal et al., 2017, "Making the V in VQA Matter: Elevating the Role of Image Understanding in
Visual Question Answering"): tasks `vqav2_val` and `vqav2_testdev`.

Reads `<root>/vqav2/`: val = v2_OpenEnded_mscoco_val2014_questions.json + v2_mscoco_val2014_annotations.json
(10 annotators' answers each; images `<root>/coco/val2014/COCO_val2014_{image_id:012d}.jpg`); test-dev =
v2_OpenEnded_mscoco_test-dev2015_questions.json (no answers; images `<root>/coco/test2015/`). The export
(`evalkit export vqav2`) also reads v2_OpenEnded_mscoco_test2015_questions.json: EvalAI wants every test2015
question. Or a local lmms-lab/VQAv2 snapshot (validation / testdev / test parquet, same fields).
Sample id = question_id; target = multiple_choice_answer, or the answer itself when all 10 agree (what the
official code then compares, unprocessed). Metrics, val: `accuracy` (primary), `yes_no`, `number`, `other`
(by answer_type), `unparsed`, `failed`; test-dev: counts only (`answered`, `empty`, `unparsed`, `failed`).

Prompt, both protocols: question + SHORT. Protocol llava: 128 tokens, pad, LLaVA's path to its published
numbers (`vqa_submission`): the reply through the EvalAI processor (convert_vqav2_for_submission), then
the current official evaluation (both sides processed only when the 10 answers differ; BENCHMARKS.md's
"answers get punctuation processing only" describes older code). Protocol lmms-eval (0.7.2 vqav2_val):
16 tokens, native images, both sides always processed (`vqa_always_processed`). An empty reply is
unparsed; a reply that normalisation empties ("The.") is scored as given (wrong unless annotators agree).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from sys import intern
from typing import Any, NamedTuple

from evalkit.data.images import ImageRef, file_ref
from evalkit.data.jsonstream import json_list
from evalkit.data.readers import (
    LIST,
    TEXT,
    Dataset,
    FieldType,
    Sample,
    fingerprint,
    read_benchmark,
    read_parquet_rows,
    require_dir,
    require_fields,
    split_files,
)
from evalkit.errors import InputError
from evalkit.protocols import SHORT
from evalkit.scoring.outcomes import grouped_accuracy, submission_answer, submission_counts, vqa_match
from evalkit.scoring.vqa import evalai_process, vqa_always_processed, vqa_submission
from evalkit.task import Task, Variant

VAL_QUESTIONS = "v2_OpenEnded_mscoco_val2014_questions.json"
VAL_ANNOTATIONS = "v2_mscoco_val2014_annotations.json"
TESTDEV_QUESTIONS = "v2_OpenEnded_mscoco_test-dev2015_questions.json"
TEST_QUESTIONS = "v2_OpenEnded_mscoco_test2015_questions.json"
LABELS = ("answers", "multiple_choice_answer", "answer_type", "question_type")
LABEL_TYPES: dict[str, FieldType] = {"answers": LIST, "multiple_choice_answer": TEXT, "answer_type": TEXT,
                                     "question_type": TEXT}  # fmt: skip
IMAGES = {
    "val": ("val2014", "COCO_val2014_{:012d}.jpg"),
    "testdev": ("test2015", "COCO_test2015_{:012d}.jpg"),
}


def _listed(path: Path, key: str, fields: dict[str, FieldType]) -> Iterator[dict[str, Any]]:
    """The entries of the `key` list of a VQA json file (questions or annotations), parsed one at a time
    (the val annotations are 165 MB), each checked for `fields`."""
    entries = json_list(path, key, f"{{{key!r}: [...]}} (the VQA {key} file)")
    for k, entry in enumerate(entries):
        yield require_fields(entry, f"{path}: {key[:-1]} {k}", fields)


def _shared(value: Any) -> Any:
    """One copy of a string that repeats (VQAv2 val's 2.1M answers hold few distinct ones: "yes", "2"...)."""
    return intern(value) if type(value) is str else value


class _Labels(NamedTuple):
    """What a sample keeps of its annotation."""

    answers: list[str]
    multiple_choice_answer: str
    answer_type: Any
    question_type: Any


def _labels(a: dict[str, Any]) -> _Labels:
    answers = [intern(str(x["answer"])) for x in a["answers"]]
    mca = intern(str(a["multiple_choice_answer"]))
    return _Labels(answers, mca, _shared(a["answer_type"]), _shared(a["question_type"]))


def _sample(q: dict[str, Any], image: ImageRef, labels: _Labels | None) -> Sample:
    answers = labels.answers if labels else []
    target = "" if labels is None else answers[0] if len(set(answers)) == 1 else labels.multiple_choice_answer
    meta = {"image_id": int(q["image_id"]), "answers": answers}
    if labels is not None:
        meta |= {"answer_type": labels.answer_type, "question_type": labels.question_type}
    return Sample(str(q["question_id"]), (image,), _shared(q["question"]), target, meta)


def _read_authors(folder: Path, split: str) -> Dataset:
    sub, name = IMAGES[split]
    images = require_dir(folder.parent / "coco" / sub, f"VQAv2 images (COCO {sub})")
    questions = folder / (VAL_QUESTIONS if split == "val" else TESTDEV_QUESTIONS)
    files = [questions]
    annotations: dict[int, _Labels] = {}
    if split == "val":
        files.append(folder / VAL_ANNOTATIONS)
        for a in _listed(files[1], "annotations", {"question_id": int, **LABEL_TYPES}):
            annotations[a["question_id"]] = _labels(a)
    samples, refs = [], dict[int, ImageRef]()  # an image is asked about ~5 times: one reference each
    for q in _listed(questions, "questions", {"question_id": int, "image_id": int, "question": TEXT}):
        labels = annotations.get(q["question_id"])
        if split == "val" and labels is None:
            raise InputError(f"{files[1]}: no annotation for question {q['question_id']} of {questions.name}")
        if (image_id := q["image_id"]) not in refs:
            refs[image_id] = file_ref(images / name.format(image_id))
        samples.append(_sample(q, refs[image_id], labels))
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint(files))


def _read_parquet(folder: Path, files: list[Path], split: str) -> Dataset:
    chosen = split_files(files, "validation" if split == "val" else "testdev", "VQAv2 snapshot")
    labels = LABELS if split == "val" else ()
    samples = []
    for row in read_parquet_rows(chosen):
        v = row.require("question_id", "image_id", "question", *labels)
        samples.append(_sample(v, row.image(), _labels(v) if labels else None))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(chosen))


def test2015_question_ids(folder: Path) -> list[int]:
    """Every test2015 question id, in file order (the export lists them all)."""
    if files := [f for f in folder.rglob("test-*.parquet") if f.is_file()]:
        return [int(row.require("question_id")["question_id"]) for row in read_parquet_rows(sorted(files))]
    return [q["question_id"] for q in _listed(folder / TEST_QUESTIONS, "questions", {"question_id": int})]


def _loader(split: str) -> Callable[[Path], Dataset]:
    def load(folder: Path) -> Dataset:
        authors, snapshot = partial(_read_authors, split=split), partial(_read_parquet, split=split)
        return read_benchmark(folder, "VQAv2", authors, snapshot)

    return load


def prompt(sample: Sample) -> str:
    return sample.question + SHORT


TASKS = [
    Task(
        name="vqav2_val",
        version=2,
        folder="vqav2",
        description="VQAv2 val2014 (214k questions), VQA accuracy over 10 annotators",
        load=_loader("val"),
        variants={
            "llava": Variant(prompt, vqa_match(vqa_submission), max_new_tokens=128, image_mode="pad"),
            "lmms-eval": Variant(prompt, vqa_match(vqa_always_processed), 16, image_mode="native"),
        },
        aggregate=grouped_accuracy("answer_type"),
        primary="accuracy",
        kind="short",
    ),
    Task(
        name="vqav2_testdev",
        version=1,
        folder="vqav2",
        description="VQAv2 test-dev2015: answers for the EvalAI server (evalkit export vqav2)",
        load=_loader("testdev"),
        variants={
            "llava": Variant(prompt, submission_answer(evalai_process), max_new_tokens=128, image_mode="pad"),
            "lmms-eval": Variant(prompt, submission_answer(evalai_process), 16, image_mode="native"),
        },
        aggregate=submission_counts,
        primary="accuracy",  # none without answers: the server's number
        kind="short",
        exports=("vqav2",),
    ),
]
