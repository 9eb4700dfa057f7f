"""GQA (Hudson & Manning, 2019, "GQA: A New Dataset for Real-World Visual Reasoning and Compositional
Question Answering"), test-dev balanced split (12,578 questions).

Reads `<root>/gqa/testdev_balanced_questions.json` ({qid: {imageId, question, answer, isBalanced, types:
{structural, semantic, detailed}}}) with images `<root>/gqa/images/<imageId>.jpg`; or a local snapshot of
lmms-lab/GQA: `testdev_balanced_instructions/testdev-*.parquet` (id, imageId, question, answer, types)
with the images in `testdev_balanced_images/testdev-*.parquet` (id, image). As GQA's `eval.py`, only
questions with `isBalanced` true are scored (all of them in this file). Sample ids are the qids (LLaVA's
question ids too). Metrics: `accuracy` (primary) and one per structural type (verify, query, choose,
logical, compare); an empty reply (nothing left after normalising) is unparsed and wrong.

Prompt, both protocols: question + SHORT. Protocol llava: max_new_tokens 128, pad; LLaVA's
`convert_gqa_for_eval.py` (`rstrip('.').lower()`) then GQA's exact match against the raw answer.
Protocol lmms-eval (gqa): max_new_tokens 16, native; `exact_match` ignoring case and punctuation on both
sides (of the stripped reply).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.data.images import ImageRef, file_ref, safe_join
from evalkit.data.readers import (
    TEXT,
    Dataset,
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
from evalkit.scoring.exact import exact_match, lower_no_punctuation, rstrip_period_lower, strip_lower
from evalkit.scoring.outcomes import grouped_accuracy
from evalkit.task import Task, Variant

QUESTIONS = "testdev_balanced_questions.json"
INSTRUCTIONS, IMAGES, SPLIT = "testdev_balanced_instructions", "testdev_balanced_images", "testdev"


def _sample(qid: str, q: dict[str, Any], image: ImageRef, where: str) -> Sample:
    types = q.get("types") or {}
    if not types.get("structural"):
        raise InputError(f"{where}: no types.structural")
    meta = {
        "structural": types["structural"],
        "semantic": types.get("semantic") or "",
        "image_id": q["imageId"],
    }
    return Sample(qid, (image,), q["question"], str(q["answer"]), meta)


def _read_authors(folder: Path) -> Dataset:
    path = folder / QUESTIONS
    questions = read_json(path)
    if not isinstance(questions, dict):
        raise InputError(f"{path}: expected {{qid: question}} as GQA distributes it")
    images = require_dir(folder / "images", "GQA images (images/)")
    samples = []
    for qid, q in questions.items():
        where = f"{path}: question {qid}"
        require_fields(q, where, {"imageId": TEXT, "question": TEXT, "answer": TEXT, "types": dict})
        if q.get("isBalanced", True):
            samples.append(
                _sample(str(qid), q, file_ref(safe_join(images, f"{q['imageId']}.jpg", where)), where)
            )
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint([path]))


def _config(files: list[Path], name: str) -> list[Path]:
    return split_files([f for f in files if name in f.parts], SPLIT, f"GQA snapshot ({name})")


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    questions, image_files = _config(files, INSTRUCTIONS), _config(files, IMAGES)
    images = {str(row.require("id")["id"]): row.image() for row in read_parquet_rows(image_files)}
    samples = []
    for row in read_parquet_rows(questions):
        q = row.require("id", "imageId", "question", "answer", "types")
        if q["imageId"] not in images:
            raise InputError(f"{row.where}: image {q['imageId']} not in {IMAGES}")
        if q.get("isBalanced", True):
            samples.append(_sample(str(q["id"]), q, images[q["imageId"]], row.where))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(questions))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "GQA", _read_authors, _read_parquet)


def prompt(sample: Sample) -> str:
    return sample.question + SHORT


TASK = Task(
    name="gqa",
    version=1,
    folder="gqa",
    description="GQA test-dev balanced, short answers, exact match (per structural type)",
    load=load,
    variants={
        "llava": Variant(prompt, exact_match(rstrip_period_lower), max_new_tokens=128, image_mode="pad"),
        "lmms-eval": Variant(
            prompt,
            exact_match(lower_no_punctuation, lower_no_punctuation),
            max_new_tokens=16,
            image_mode="native",
        ),
        # VLMEvalKit 3dfe2971 (GQA_TestDev_Balanced): the short-answer suffix, exact after strip + lower
        "vlmevalkit": Variant(prompt, exact_match(strip_lower, strip_lower)),
    },
    aggregate=grouped_accuracy("structural"),
    primary="accuracy",
    kind="short",
)
