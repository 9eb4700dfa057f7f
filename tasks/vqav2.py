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

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from evalkit.data.images import ImageRef, file_ref
from evalkit.data.readers import (
    LIST,
    TEXT,
    Dataset,
    FieldType,
    Sample,
    fingerprint,
    read_benchmark,
    read_json,
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


def _listed(path: Path, key: str, fields: dict[str, FieldType]) -> list[dict[str, Any]]:
    """The `key` list of a VQA json file (questions or annotations), each entry checked for `fields`."""
    found = read_json(path)
    if not isinstance(found, dict) or not isinstance(found.get(key), list):
        raise InputError(f"{path}: expected {{{key!r}: [...]}} (the VQA {key} file)")
    for k, entry in enumerate(found[key]):
        require_fields(entry, f"{path}: {key[:-1]} {k}", fields)
    return found[key]


def _sample(q: dict[str, Any], image: ImageRef, a: dict[str, Any] | None) -> Sample:
    answers = [str(x["answer"]) for x in a["answers"]] if a else []
    target = "" if a is None else answers[0] if len(set(answers)) == 1 else str(a["multiple_choice_answer"])
    meta = {"image_id": int(q["image_id"]), "answers": answers}
    if a is not None:
        meta |= {"answer_type": a["answer_type"], "question_type": a["question_type"]}
    return Sample(str(q["question_id"]), (image,), q["question"], target, meta)


def _read_authors(folder: Path, split: str) -> Dataset:
    sub, name = IMAGES[split]
    images = require_dir(folder.parent / "coco" / sub, f"VQAv2 images (COCO {sub})")
    questions = folder / (VAL_QUESTIONS if split == "val" else TESTDEV_QUESTIONS)
    files = [questions]
    annotations: dict[int, dict[str, Any]] = {}
    if split == "val":
        files.append(folder / VAL_ANNOTATIONS)
        listed = _listed(files[1], "annotations", {"question_id": int, **LABEL_TYPES})
        annotations = {int(a["question_id"]): a for a in listed}
    samples, refs = [], dict[int, ImageRef]()  # an image is asked about ~5 times: one reference each
    for q in _listed(questions, "questions", {"question_id": int, "image_id": int, "question": TEXT}):
        a = annotations.get(int(q["question_id"]))
        if split == "val" and a is None:
            raise InputError(f"{files[1]}: no annotation for question {q['question_id']} of {questions.name}")
        if (image_id := int(q["image_id"])) not in refs:
            refs[image_id] = file_ref(images / name.format(image_id))
        samples.append(_sample(q, refs[image_id], a))
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint(files))


def _read_parquet(folder: Path, files: list[Path], split: str) -> Dataset:
    chosen = split_files(files, "validation" if split == "val" else "testdev", "VQAv2 snapshot")
    labels = LABELS if split == "val" else ()
    samples = []
    for row in read_parquet_rows(chosen):
        v = row.require("question_id", "image_id", "question", *labels)
        samples.append(_sample(v, row.image(), v if labels else None))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(chosen))


def test2015_question_ids(folder: Path) -> list[int]:
    """Every test2015 question id, in file order (the export lists them all)."""
    if files := [f for f in folder.rglob("test-*.parquet") if f.is_file()]:
        return [int(row.require("question_id")["question_id"]) for row in read_parquet_rows(sorted(files))]
    return [
        int(q["question_id"]) for q in _listed(folder / TEST_QUESTIONS, "questions", {"question_id": int})
    ]


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
