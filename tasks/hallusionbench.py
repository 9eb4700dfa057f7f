"""HallusionBench (Guan et al., 2024, "HallusionBench: An Advanced Diagnostic Suite for Entangled Language
Hallucination and Visual Illusion in Large Vision-Language Models"), the questions with an image (951).

Reads the authors' `<root>/hallusionbench/HallusionBench.json` (a list of {category VD|VS, subcategory,
visual_input "0"|"1"|"2", set_id, figure_id, question_id, question, gt_answer "1"|"0", gt_answer_details,
filename}) with the images of hallusion_bench.zip unpacked in `<root>/hallusionbench/hallusion_bench/`.
The current file names images "./VS/chart/0_1.png" (relative to that folder), the first release
"./hallusion_bench/VD/illusion/0_0.png" (relative to the json): both are read; a null filename falls back
to the authors' own rule `<category>/<subcategory>/<set_id>_<figure_id>.png`. Or a local snapshot of
lmms-lab/HallusionBench (split `image` only). Questions without an image (visual_input "0") are skipped.
Target: "yes" for gt_answer "1", "no" for "0". Sample ids: category/subcategory/set/figure/question.

Metrics (percent): `aacc` (per question, primary); `facc` (a figure - category, subcategory, set, figure -
counts only if all its questions are right); `qacc` (a question - category, subcategory, set, question -
counts only if right on all its figures; the skipped text-only versions do not take part).
Prompt: the bare question, max_new_tokens 128, both protocols. `hallusionbench` scores rule-based:
protocol llava uses
VLMEvalKit's yes/no word rule (`yes_no_words`, what the xtuner numbers used), pad; protocol lmms-eval its
disabled rule-based aggregation (`yes_no_contains`: "yes" anywhere -> yes), native images.
`hallusionbench_judge` is the official way: an LLM judge (`--judge`) reads the reply against
gt_answer_details and says correct / incorrect / unclear (the authors' mapping: "incorrect" anywhere ->
wrong, else "correct" -> right, else unclear -> wrong); the grader prompt, in our own words, is the data file
evalkit/data/prompts/hallusionbench_judge.txt ($EVALKIT_HALLUSIONBENCH_JUDGE names another). Same keys, plus
`pending` (grades the judge could not give yet).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from evalkit.data.images import ImageRef, file_ref, safe_join
from evalkit.data.readers import (
    ID,
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
from evalkit.records import Prediction
from evalkit.scoring.group import accuracy, all_correct_rate
from evalkit.scoring.judge import JudgeRequest, fill, grader_text
from evalkit.scoring.outcomes import label_match
from evalkit.scoring.twins import hallusionbench as twin
from evalkit.scoring.yesno import yes_no_contains, yes_no_words
from evalkit.task import Judged, Task, Unit, Variant, pending_judge

KEYS = {"category": TEXT, "subcategory": TEXT, "visual_input": ID, "set_id": ID, "figure_id": ID,
        "question_id": ID, "question": TEXT, "gt_answer": ID}  # fmt: skip
TARGETS = {"1": "yes", "0": "no"}
IMAGES = "hallusion_bench"  # the folder hallusion_bench.zip unpacks to


def _sample(q: dict[str, Any], image: ImageRef, where: str) -> Sample:
    gt = str(q["gt_answer"])
    if gt not in TARGETS:
        raise InputError(f"{where}: gt_answer {gt!r} is neither '1' nor '0'")
    meta = {k: str(q[k]) for k in ("category", "subcategory", "set_id", "figure_id", "question_id")}
    meta["gt_answer_details"] = str(q.get("gt_answer_details") or "")
    sid = "/".join(meta[k] for k in ("category", "subcategory", "set_id", "figure_id", "question_id"))
    return Sample(sid, (image,), q["question"], TARGETS[gt], meta)


def image_path(folder: Path, q: dict[str, Any], where: str = "") -> Path:
    """Where a question's image is, for either release's `filename` form (see the module docstring)."""
    name = q.get("filename") or f"{q['category']}/{q['subcategory']}/{q['set_id']}_{q['figure_id']}.png"
    if not isinstance(name, str):
        raise InputError(f"{where}: filename is {name!r:.60}, expected text")
    relative = name.removeprefix("./")
    if relative.startswith(f"{IMAGES}/"):
        return safe_join(folder, relative, where)
    return safe_join(folder / IMAGES, relative, where)


def _read_authors(folder: Path) -> Dataset:
    path = folder / "HallusionBench.json"
    questions = read_json(path)
    if not isinstance(questions, list):
        raise InputError(f"{path}: expected a list of questions as the authors distribute it")
    require_dir(folder / IMAGES, f"HallusionBench images ({IMAGES}/ from hallusion_bench.zip)")
    samples = []
    for k, q in enumerate(questions):
        where = f"{path}: entry {k}"
        require_fields(q, where, KEYS)
        if str(q["visual_input"]) != "0":
            samples.append(_sample(q, file_ref(image_path(folder, q, where)), where))
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint([path]))


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    image_split = split_files(files, "image", "HallusionBench snapshot")
    samples = []
    for row in read_parquet_rows(image_split):
        q = row.require(*KEYS)
        if str(q["visual_input"]) != "0":
            samples.append(_sample(q, row.image(), row.where))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(image_split))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "HallusionBench", _read_authors, _read_parquet)


def prompt(sample: Sample) -> str:
    return sample.question


def aggregate(
    predictions: list[Prediction], keys: tuple[str, ...] = ("category", "subcategory")
) -> dict[str, float]:
    """aAcc per question; fAcc per figure and qAcc per question across its figures, each group identified by
    `keys` + set id + figure (question) id. VLMEvalKit's Hallusion_rating leaves the category (VD/VS) out."""

    def right(p: Prediction) -> bool:
        return p.score == 1.0

    def group(last: str) -> Callable[[Prediction], tuple[str, ...]]:
        return lambda p: tuple(p.meta[k] for k in (*keys, "set_id", last))

    return {
        "aacc": accuracy(p.score for p in predictions),
        "facc": all_correct_rate(predictions, group("figure_id"), right),
        "qacc": all_correct_rate(predictions, group("question_id"), right),
    }


# the independent unit: a question set, which holds every figure group and question group `aggregate` forms
SET = Unit(("category", "subcategory", "set_id"), "question set", vectorised=twin)
JUDGE_PROMPT = ("HallusionBench grader prompt", "data/prompts/hallusionbench_judge.txt",
                "EVALKIT_HALLUSIONBENCH_JUDGE", ("question", "reference", "prediction"))  # fmt: skip


def judge_request(record: Prediction) -> JudgeRequest:
    values = {"question": record.meta["question"], "reference": record.meta["gt_answer_details"] or
              record.meta["target"], "prediction": record.output.strip()}  # fmt: skip
    return JudgeRequest(messages=[{"role": "user", "content": fill(grader_text(*JUDGE_PROMPT), values)}])


def verdict(reply: str) -> int:
    """The authors' reading of the judge: 0 incorrect, 1 correct, 2 unclear (never unreadable)."""
    text = reply.lower()
    return 0 if "incorrect" in text else 1 if "correct" in text else 2


TASK = Task(
    name="hallusionbench",
    version=1,
    folder="hallusionbench",
    description="HallusionBench image questions, yes/no, rule-based scoring (aAcc, fAcc, qAcc)",
    load=load,
    variants={
        "llava": Variant(prompt, label_match(yes_no_words), max_new_tokens=128, image_mode="pad"),
        "lmms-eval": Variant(prompt, label_match(yes_no_contains), max_new_tokens=128, image_mode="native"),
        "vlmevalkit": Variant(
            aggregate=partial(aggregate, keys=("subcategory",)),
            unit=Unit(
                ("subcategory", "set_id"), "question set", vectorised=partial(twin, keys=("subcategory",))
            ),
        ),
    },
    aggregate=aggregate,
    primary="aacc",
    kind="yes_no",
    unit=SET,
)
JUDGED_TASK = Task(
    name="hallusionbench_judge",
    version=1,
    folder="hallusionbench",
    description="HallusionBench image questions, graded by an LLM judge against gt_answer_details",
    load=load,
    variants={
        "llava": Variant(prompt, pending_judge, max_new_tokens=128, image_mode="pad"),
        "lmms-eval": Variant(prompt, pending_judge, max_new_tokens=128, image_mode="native"),
    },
    aggregate=aggregate,
    primary="aacc",
    kind="free",
    unit=SET,
    judged=Judged(judge_request, verdict, lambda grade: float(grade == 1), tries=1),
)
TASKS = [JUDGED_TASK]
