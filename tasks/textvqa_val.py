"""TextVQA (Singh et al., 2019, "Towards VQA Models That Can Read"), validation split (5000 questions).

Reads `<root>/textvqa/TextVQA_0.5.1_val.json` ({"data": [{question_id, question, image_id, answers[10]}]})
and `TextVQA_Rosetta_OCR_v0.2_val.json` ({"data": [{image_id, ocr_tokens, ocr_info}]}), images in
`<root>/textvqa/train_images/<image_id>.jpg`; or a local snapshot of lmms-lab/textvqa (validation files:
question_id, question, image_id, answers, ocr_tokens, image). The 10 answers stay in `meta["answers"]`;
the target is the most common answer after the EvalAI processor (its first raw spelling).
Metric: `accuracy` (M4C evaluator: EvalAI processor on the reply and on all 10 answers, then the mean of
min(1, matches among the other 9 / 3)); an empty reply is unparsed and scores 0. LLaVA's answer files key
questions by image id and prompt, not question id, so no external-id mapping is offered.

Protocol llava (LLaVA-1.5 / ShareGPT4V numbers, llava_textvqa_val_v051_ocr.jsonl): question +
"\\nReference OCR token: " + ", ".join(tokens) + SHORT; an image without tokens keeps the line with nothing
after its space ("...token: \\nAnswer..."), as in LLaVA's file. max_new_tokens 128, pad.
Protocol lmms-eval (textvqa_val, default `ocr: false`): `question.capitalize()` (Python's: the rest of the
question is lower-cased) + SHORT, no OCR line; the model's default generation length (1024), native images.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.data.images import ImageRef, file_ref, safe_join
from evalkit.data.readers import (
    ID,
    LIST,
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
from evalkit.scoring.outcomes import grouped_accuracy, vqa_match
from evalkit.scoring.vqa import evalai_process, m4c
from evalkit.task import Task, Variant

QUESTIONS = "TextVQA_0.5.1_val.json"
OCR = "TextVQA_Rosetta_OCR_v0.2_val.json"
OCR_LINE = "\nReference OCR token: "


def most_common_answer(answers: Sequence[str]) -> str:
    """The answer most annotators gave once processed (ties: first seen), in its first raw spelling."""
    processed = [evalai_process(a) for a in answers]
    best = Counter(processed).most_common(1)[0][0]
    return answers[processed.index(best)]


def _sample(q: dict[str, Any], tokens: list[str], image: ImageRef, where: str) -> Sample:
    answers = [str(a) for a in q["answers"] or []]
    if not answers:
        raise InputError(f"{where}: no answers (the val split has 10 per question)")
    meta = {"answers": answers, "ocr_tokens": [str(t) for t in tokens], "image_id": str(q["image_id"])}
    return Sample(str(q["question_id"]), (image,), q["question"], most_common_answer(answers), meta)


def _data(path: Path) -> list[dict[str, Any]]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(f"{path}: expected {{'data': [...]}} as TextVQA distributes it")
    return data["data"]


def _read_authors(folder: Path) -> Dataset:
    questions_file, ocr_file = folder / QUESTIONS, folder / OCR
    images = require_dir(folder / "train_images", "TextVQA images (train_images/)")
    ocr: dict[str, list[str]] = {}
    for k, entry in enumerate(_data(ocr_file)):
        require_fields(entry, f"{ocr_file}: entry {k}", {"image_id": ID, "ocr_tokens": LIST})
        ocr[str(entry["image_id"])] = entry["ocr_tokens"]
    samples = []
    for k, q in enumerate(_data(questions_file)):
        where = f"{questions_file}: entry {k}"
        require_fields(q, where, {"question_id": ID, "question": TEXT, "image_id": ID, "answers": LIST})
        if str(q["image_id"]) not in ocr:
            raise InputError(f"{where}: image {q['image_id']} has no entry in {OCR}")
        image = file_ref(safe_join(images, f"{q['image_id']}.jpg", where))
        samples.append(_sample(q, ocr[str(q["image_id"])], image, where))
    files = [questions_file, ocr_file]
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint(files))


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    val = split_files(files, "validation", "TextVQA snapshot")
    samples = []
    for row in read_parquet_rows(val):
        q = row.require("question_id", "question", "image_id", "answers")
        samples.append(_sample(q, q.get("ocr_tokens") or [], row.image(), row.where))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(val))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "TextVQA", _read_authors, _read_parquet)


def prompt_llava(sample: Sample) -> str:
    return sample.question + OCR_LINE + ", ".join(sample.meta["ocr_tokens"]) + SHORT


def prompt_lmms(sample: Sample) -> str:
    return sample.question.capitalize() + SHORT


TASK = Task(
    name="textvqa_val",
    version=2,
    folder="textvqa",
    description="TextVQA validation, open answers, VQA accuracy with the EvalAI processor (M4C)",
    load=load,
    variants={
        "llava": Variant(prompt_llava, vqa_match(m4c), max_new_tokens=128, image_mode="pad"),
        "lmms-eval": Variant(prompt_lmms, vqa_match(m4c), max_new_tokens=1024, image_mode="native"),
        "vlmevalkit": Variant(),
    },
    aggregate=grouped_accuracy(),
    primary="accuracy",
    kind="short",
)
