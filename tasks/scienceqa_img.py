"""ScienceQA-IMG (Lu et al., 2022, "Learn to Explain: Multimodal Reasoning via Thought Chains for Science
Question Answering").

Reads `<root>/scienceqa/problems.json` ({pid: {question, choices, answer (index), hint, image, ...}}) and
`pid_splits.json`, with images in `<root>/scienceqa/images/test/<pid>/<image>`: the test split's problems
that have an image (2017). Or a local snapshot of lmms-lab/ScienceQA (config ScienceQA-IMG, test files:
image, question, choices, answer, hint; ids are then `test-<row>`, lmms-eval's doc order).
2-5 options; the target is the letter of `answer`. Metric: `accuracy` (IMG accuracy, primary).

Prompt, both protocols: ["Context: " + hint + "\\n"] (only for a non-empty hint) + question + "A. .." lines
+ MC, as in LLaVA-1.5's llava_test_CQM-A.json (model_vqa_science --single-pred-prompt) and lmms-eval's
sqa_doc_to_text. (LLaVA's own convert_sqa_to_llava writes "Context: N/A" for an empty hint; the released
v1.5 question file that made the numbers has no context line then.)
Protocol llava: max_new_tokens 1024, plain resize + centre crop (the release model_vqa_science used the
image processor directly, no pad), LLaVA eval_science_qa.py parsing (`SQA_LLAVA`).
Protocol lmms-eval (scienceqa_img): max_new_tokens 16, native images, `SQA_LMMS` (stripped reply equal to
the letter in either case, or "X." with X upper-case).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.data.images import ImageRef, file_ref, safe_join
from evalkit.data.readers import (
    LIST,
    OPTIONAL_TEXT,
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
from evalkit.protocols import MC
from evalkit.scoring.options import LETTERS, SQA_LLAVA, SQA_LMMS, options_from, render_options
from evalkit.scoring.outcomes import grouped_accuracy, option_match
from evalkit.task import Task, Variant

SPLIT = "test"


def _sample(sid: str, p: dict[str, Any], image: ImageRef, where: str) -> Sample:
    if not isinstance(p["choices"], list | tuple) or not all(isinstance(c, str) for c in p["choices"]):
        raise InputError(f"{where}: choices {p['choices']!r:.60} is not a list of texts")
    choices = list(p["choices"])
    answer = p["answer"]
    if not isinstance(answer, int) or not 0 <= answer < len(choices) or len(choices) > len(LETTERS):
        raise InputError(f"{where}: answer {answer!r} is no index into its {len(choices)} choices")
    meta = {"options": options_from(choices), "hint": str(p.get("hint") or "")}
    return Sample(sid, (image,), p["question"], LETTERS[answer], meta)


def _read_authors(folder: Path) -> Dataset:
    problems_file, splits_file = folder / "problems.json", folder / "pid_splits.json"
    problems, splits = read_json(problems_file), read_json(splits_file)
    if SPLIT not in splits:
        raise InputError(f"{splits_file}: no {SPLIT!r} split")
    images = require_dir(folder / "images" / SPLIT, "ScienceQA test images")
    samples: list[Sample] = []
    for pid in map(str, splits[SPLIT]):
        where = f"{problems_file}: problem {pid}"
        if pid not in problems:
            raise InputError(f"{where}: listed in {splits_file.name} but not in {problems_file.name}")
        p = problems[pid]
        fields = {"question": TEXT, "choices": LIST, "answer": int, "image": OPTIONAL_TEXT}
        require_fields(p, where, fields | {"hint": OPTIONAL_TEXT} if "hint" in p else fields)
        if p["image"]:
            samples.append(_sample(pid, p, file_ref(safe_join(images, f"{pid}/{p['image']}", where)), where))
    files = [problems_file, splits_file]
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint(files))


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    img = [f for f in files if "ScienceQA-IMG" in f.parts] or files  # lmms-lab/ScienceQA also has -FULL
    test = split_files(img, SPLIT, "ScienceQA snapshot")
    samples = []
    for k, row in enumerate(read_parquet_rows(test)):
        samples.append(
            _sample(f"{SPLIT}-{k}", row.require("question", "choices", "answer"), row.image(), row.where)
        )
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(test))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "ScienceQA", _read_authors, _read_parquet)


def prompt(sample: Sample) -> str:
    hint = sample.meta["hint"]
    context = f"Context: {hint}\n" if hint else ""
    return context + sample.question + render_options(sample.meta["options"]) + MC


TASK = Task(
    name="scienceqa_img",
    version=1,
    folder="scienceqa",
    description="ScienceQA test questions with an image (IMG accuracy), 2-5 options",
    load=load,
    variants={
        "llava": Variant(prompt, option_match(SQA_LLAVA), max_new_tokens=1024, image_mode="crop"),
        "lmms-eval": Variant(prompt, option_match(SQA_LMMS), max_new_tokens=16, image_mode="native"),
        "vlmevalkit": Variant(),
    },
    aggregate=grouped_accuracy(),
    primary="accuracy",
    kind="option",
)
