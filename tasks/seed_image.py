"""SEED-Bench, image part (Li et al., 2023, "SEED-Bench: Benchmarking Multimodal LLMs with Generative
Comprehension").

Reads `<root>/seed_bench/SEED-Bench.json` ({"questions": [...], "question_type": {name: id}}) with images
in `<root>/seed_bench/SEED-Bench-image/<data_id>`; only `data_type == "image"` questions (14,233; the video
dimensions 10-12 are skipped). Four options A-D, the answer a letter.
Metrics: `accuracy` (primary) and one accuracy per question type, keyed by the snake_case of the name the
file's own `question_type` dict gives the id (ids 3/4 are named inconsistently across sources).

Protocol llava (LLaVA-1.5 `scripts/v1_5/eval/seed.sh`): model_vqa_loader with its default
max_new_tokens 128, pad mode; `convert_seed_for_submission.py` counts a reply right only when the stripped
reply *is* the letter ("A." is wrong and unparsed here). BENCHMARKS.md says 1024: the script never passes
--max_new_tokens, so the loader's default of 128 is what made the numbers.
Protocol lmms-eval (`seedbench`): same prompt; the first character of the stripped reply, case ignored;
no max_new_tokens in the task, so the llava wrapper's 1024; native images. lmms-eval also cuts replies at
"ASSISTANT:", which cannot change a first character other than for a reply that opens with it.
The lmms-lab/SEED-Bench parquet snapshot is not read: its `image` column holds a list of frames per row and
it lacks the question-type names, so the authors' files are needed.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.data.images import file_ref, safe_join
from evalkit.data.readers import (
    ID,
    TEXT,
    Dataset,
    Sample,
    fingerprint,
    read_benchmark,
    read_json,
    require_dir,
    require_fields,
)
from evalkit.errors import InputError
from evalkit.protocols import MC
from evalkit.scoring.options import EXACT_LETTER, FIRST_CHAR, options_from, render_options
from evalkit.scoring.outcomes import grouped_accuracy, option_match
from evalkit.task import Task, Variant

ANNOTATIONS = "SEED-Bench.json"
IMAGES = "SEED-Bench-image"
CHOICES = ("choice_a", "choice_b", "choice_c", "choice_d")
FIELDS = {"question_id": ID, "question": TEXT, **dict.fromkeys(CHOICES, TEXT), "answer": TEXT,
          "data_id": TEXT, "data_type": TEXT, "question_type_id": ID}  # fmt: skip


def _read_authors(folder: Path) -> Dataset:
    path = folder / ANNOTATIONS
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise InputError(f"{path}: expected {{'questions': [...], 'question_type': {{name: id}}}}")
    type_names = {str(i): name for name, i in (data.get("question_type") or {}).items()}
    images = require_dir(folder / IMAGES, "SEED-Bench images")
    samples: list[Sample] = []
    for n, q in enumerate(data["questions"], 1):
        where = f"{path}: question {n}"
        require_fields(q, where, FIELDS)
        if q["data_type"] != "image":
            continue
        kind = str(q["question_type_id"])
        if kind not in type_names:
            raise InputError(f"{where}: question_type_id {kind} is not in the file's question_type dict")
        options = options_from([q[f"choice_{c}"] for c in "abcd"])
        answer = str(q["answer"]).strip()
        if answer not in options:
            raise InputError(f"{where}: answer {q['answer']!r} is not one of A-D")
        meta = {"options": options, "category": type_names[kind], "image_id": q["data_id"]}
        image = file_ref(safe_join(images, q["data_id"], where))
        samples.append(Sample(str(q["question_id"]), (image,), q["question"], answer, meta))
    if not samples:
        raise InputError(f"{path}: no image questions (data_type 'image')")
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint([path]))


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    raise InputError(
        f"SEED-Bench: {folder} holds parquet files, but only the authors' {ANNOTATIONS} + {IMAGES}/ are "
        "read (the lmms-lab snapshot stores frame lists and no question-type names)"
    )


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "SEED-Bench", _read_authors, _read_parquet)


def prompt(sample: Sample) -> str:
    """LLaVA's llava-seed-bench.jsonl and lmms-eval's seed_doc_to_text: question, A-D lines, MC."""
    return sample.question + render_options(sample.meta["options"]) + MC


TASK = Task(
    name="seed_image",
    version=1,
    folder="seed_bench",
    description="SEED-Bench image questions (9 dimensions), 4-way multiple choice",
    load=load,
    variants={
        "llava": Variant(prompt, option_match(EXACT_LETTER), max_new_tokens=128, image_mode="pad"),
        "lmms-eval": Variant(prompt, option_match(FIRST_CHAR), max_new_tokens=1024, image_mode="native"),
        "vlmevalkit": Variant(),
    },
    aggregate=grouped_accuracy("category"),
    primary="accuracy",
    kind="option",
)
