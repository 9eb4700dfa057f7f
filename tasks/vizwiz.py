"""VizWiz VQA (Gurari et al., 2018, "VizWiz Grand Challenge: Answering Visual Questions from Blind People"):
tasks `vizwiz_val` and `vizwiz_test`.

Reads `<root>/vizwiz/val.json` or `test.json` ([{image, question, answers: [{answer, answer_confidence}] x10,
answerable, answer_type}]; test has no answers) with images in `<root>/vizwiz/val/` and `<root>/vizwiz/test/`,
or a local lmms-lab/VizWiz-VQA snapshot (val / test parquet: question_id = the image's stem, question,
answers as plain strings, category = the answer type). Sample id = the image file name (one question each).
Target = the answer most annotators gave once EvalAI-processed, as first written. Metrics, val: `accuracy`
(primary), one per answer_type (`unanswerable`, `yes_no`, `number`, `other`), `unparsed`, `failed`; test:
counts only (`answered`, `empty`, `unparsed`, `failed`); `evalkit export vizwiz` writes the server's file.

Prompt: question + "\\nWhen the provided information is insufficient, respond with 'Unanswerable'." + SHORT.
Protocol llava (LLaVA-1.5's llava_vizwiz questions): 128 tokens, pad. Protocol lmms-eval (vizwiz_vqa):
question.capitalize() (first character upper, the rest lower) and the same two lines; no limit in its task,
so the model default of 1024 tokens; native images. Both score with the M4C evaluator (`m4c`: the EvalAI
processor on the prediction and on every answer, then leave-one-out over the 10 annotators).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from evalkit.data.images import ImageRef, file_ref, safe_join
from evalkit.data.readers import (
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
from evalkit.scoring.outcomes import grouped_accuracy, submission_answer, submission_counts, vqa_match
from evalkit.scoring.vqa import evalai_process, m4c
from evalkit.task import Task, Variant

UNANSWERABLE = "\nWhen the provided information is insufficient, respond with 'Unanswerable'."


def _target(answers: list[str]) -> str:
    """The most common answer as the scorer compares it (EvalAI-processed); ties go to the first given."""
    counts = Counter(evalai_process(a) for a in answers)
    best = max(counts.values(), default=0)
    return next((a for a in answers if counts[evalai_process(a)] == best), "")


def _sample(image_name: str, question: str, image: ImageRef, answers: list[str], kind: str | None) -> Sample:
    meta = {"answers": answers} | ({"answer_type": kind} if kind is not None else {})  # test: no type
    return Sample(image_name, (image,), question, _target(answers), meta)


def _read_authors(folder: Path, split: str) -> Dataset:
    path = folder / f"{split}.json"
    images = require_dir(folder / split, f"VizWiz {split} images")
    entries = read_json(path)
    if not isinstance(entries, list):
        raise InputError(f"{path}: expected a list of questions (VizWiz {split}.json)")
    fields = {"image": TEXT, "question": TEXT} | (
        {"answers": LIST, "answer_type": TEXT} if split == "val" else {}
    )
    samples = []
    for k, e in enumerate(entries):
        where = f"{path}: question {k}"
        require_fields(e, where, fields)
        answers = [str(a["answer"]) for a in e["answers"]] if split == "val" else []
        image = file_ref(safe_join(images, e["image"], where))
        kind = str(e["answer_type"]) if split == "val" else None
        samples.append(_sample(e["image"], e["question"], image, answers, kind))
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint([path]))


def _read_parquet(folder: Path, files: list[Path], split: str) -> Dataset:
    chosen = split_files(files, split, "VizWiz snapshot")
    labels = ("answers", "category") if split == "val" else ()
    samples = []
    for row in read_parquet_rows(chosen):
        v = row.require("question_id", "question", *labels)
        answers = [str(a) for a in v["answers"]] if labels else []
        kind = str(v["category"]) if labels else None
        samples.append(_sample(f"{v['question_id']}.jpg", v["question"], row.image(), answers, kind))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(chosen))


def _loader(split: str) -> Callable[[Path], Dataset]:
    def load(folder: Path) -> Dataset:
        authors, snapshot = partial(_read_authors, split=split), partial(_read_parquet, split=split)
        return read_benchmark(folder, "VizWiz", authors, snapshot)

    return load


def prompt_llava(sample: Sample) -> str:
    return sample.question + UNANSWERABLE + SHORT


def prompt_lmms(sample: Sample) -> str:
    return sample.question.capitalize() + UNANSWERABLE + SHORT


def _task(split: str) -> Task:
    score = vqa_match(m4c) if split == "val" else submission_answer(evalai_process)
    return Task(
        name=f"vizwiz_{split}",
        version=2 if split == "val" else 1,
        folder="vizwiz",
        description=f"VizWiz VQA {split}"
        + (", VQA accuracy (EvalAI processing)" if split == "val" else ": answers for the server"),
        load=_loader(split),
        variants={
            "llava": Variant(prompt_llava, score, max_new_tokens=128, image_mode="pad"),
            "lmms-eval": Variant(prompt_lmms, score, max_new_tokens=1024, image_mode="native"),
        },
        aggregate=grouped_accuracy("answer_type") if split == "val" else submission_counts,
        primary="accuracy",
        kind="short",
        exports=() if split == "val" else ("vizwiz",),
    )


TASKS = [_task("val"), _task("test")]
