"""LLaVA-Bench-in-the-Wild (Liu et al., 2023, "Visual Instruction Tuning"), 60 open questions on 24 images
graded by an LLM judge (`--judge`) against GPT-4's reference answers.

Reads the authors' `<root>/llava_bench_wild/questions.jsonl` ({question_id, image, text, category: conv |
detail | complex}), `context.jsonl` ({id, image, caption}), `answers_gpt4.jsonl` ({question_id, text}) and
`images/`; or a local snapshot of lmms-lab/llava-bench-in-the-wild (question_id, question, caption,
gpt_answer, category, image_id, image). Sample ids are the question ids; records keep question,
reference answer (`target`), category and caption in `meta`.

Grading follows LLaVA's eval_gpt_review_bench.py: system "You are a helpful and precise assistant for
checking the quality of the answer.", then context, question, the reference as Assistant 1, the prediction
as Assistant 2 and a rule asking for two 1-10 scores on the first line. The rule, in our own words, is
`evalkit/data/prompts/llava_bench_rule.txt`; set EVALKIT_LLAVA_BENCH_RULE to the path of another file to
use that. The caption goes in as written; a list of captions is joined by lines (as LLaVA's review script
and lmms-eval do). A reply is read like LLaVA's parse_score: its first line, commas
made spaces, exactly two numbers [reference, model] (split on any whitespace, so "8, 9" reads; a
non-positive reference score does not). LLaVA asked gpt-4-0314 once at temperature 0.2; we ask at 0, then
retry. A reply that never parses after 5 tries is left out of every average and counted in `judge_failures`
(LLaVA averages it in as [-1, -1]); a record without a reply from the model is left out too, counted in
`failed` (it has no scores to average). Per record, score = model / reference.

Metrics (summarize_gpt_review.py, percent of the reference): `all` (primary), `conv`, `detail`, `complex`
= mean(model scores) / mean(reference scores) x 100 over the graded records; LLaVA rounds both means to 3
decimals and the ratio to 1 decimal for display, we keep 6. `model_score` and `reference_score` are the
overall means x 10; `judge_failures`, `pending` (not graded yet, counted nowhere else), `unparsed`, `failed`.
Protocol llava: the bare question (model_vqa), max_new_tokens 1024, plain resize + centre crop. Protocol
lmms-eval (llava_in_the_wild, 0.7.2): the bare question, max_new_tokens 4096 (its yaml), native images.
"""

from __future__ import annotations

import math
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
    read_json_lines,
    read_parquet_rows,
    require_dir,
    require_fields,
)
from evalkit.errors import InputError
from evalkit.records import Prediction
from evalkit.scoring.group import mean, percent
from evalkit.scoring.judge import JudgeRequest, grader_text
from evalkit.task import Judged, Task, Variant, pending_judge

CATEGORIES = ("conv", "detail", "complex")
SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
RULE_ENV = "EVALKIT_LLAVA_BENCH_RULE"
RULE_FILE = "data/prompts/llava_bench_rule.txt"  # inside the evalkit package
REVIEW_MAX_TOKENS = 1024  # eval_gpt_review_bench.py --max-tokens


def _sample(qid: Any, question: str, reference: str, category: str, caption: Any, image: ImageRef) -> Sample:
    if category not in CATEGORIES:
        raise InputError(f"question {qid}: category {category!r} is not one of {', '.join(CATEGORIES)}")
    text = "\n".join(map(str, caption)) if isinstance(caption, list) else str(caption)
    return Sample(str(qid), (image,), question, reference, {"category": category, "caption": text})


def _read_authors(folder: Path) -> Dataset:
    qfile, cfile, afile = (folder / n for n in ("questions.jsonl", "context.jsonl", "answers_gpt4.jsonl"))
    images = require_dir(folder / "images", "LLaVA-Bench images")
    captions: dict[str, Any] = {}
    for number, obj in read_json_lines(cfile):
        require_fields(obj, f"{cfile}:{number}", {"image": TEXT, "caption": (str, list)})
        captions[obj["image"]] = obj["caption"]
    references: dict[str, str] = {}
    for number, obj in read_json_lines(afile):
        require_fields(obj, f"{afile}:{number}", {"question_id": ID, "text": TEXT})
        references[str(obj["question_id"])] = obj["text"]
    samples = []
    for number, q in read_json_lines(qfile):
        where = f"{qfile}:{number}"
        require_fields(q, where, {"question_id": ID, "image": TEXT, "text": TEXT, "category": TEXT})
        if q["image"] not in captions:
            raise InputError(f"{where}: image {q['image']!r} has no caption in {cfile.name}")
        if (qid := str(q["question_id"])) not in references:
            raise InputError(f"{where}: question {qid} has no reference answer in {afile.name}")
        image = file_ref(safe_join(images, q["image"], where))
        samples.append(_sample(qid, q["text"], references[qid], q["category"], captions[q["image"]], image))
    files_ = [qfile, cfile, afile]
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint(files_))


def _read_parquet(folder: Path, files_: list[Path]) -> Dataset:
    samples = []
    for row in read_parquet_rows(files_):
        v = row.require("question_id", "question", "caption", "gpt_answer", "category")
        sample = _sample(
            v["question_id"], v["question"], v["gpt_answer"], v["category"], v["caption"], row.image()
        )
        samples.append(sample)
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(files_))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "LLaVA-Bench-in-the-Wild", _read_authors, _read_parquet)


def prompt(sample: Sample) -> str:
    return sample.question


def review_rule() -> str:
    """The rule closing the review: the file named by $EVALKIT_LLAVA_BENCH_RULE, else the packaged one."""
    return grader_text("LLaVA-Bench review rule", RULE_FILE, RULE_ENV).strip()


def review_content(caption: str, question: str, reference: str, prediction: str, rule: str) -> str:
    return (
        f"[Context]\n{caption}\n\n[Question]\n{question}\n\n"
        f"[Assistant 1]\n{reference}\n\n[End of Assistant 1]\n\n"
        f"[Assistant 2]\n{prediction}\n\n[End of Assistant 2]\n\n[System]\n{rule}\n\n"
    )


def request(record: Prediction) -> JudgeRequest:
    meta = record.meta
    if not {"question", "target", "caption"} <= meta.keys():
        raise InputError(
            f"LLaVA-Bench record {record.id}: question, reference or caption missing from its meta"
        )
    content = review_content(
        str(meta["caption"]), str(meta["question"]), str(meta["target"]), record.output.strip(), review_rule()
    )
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]
    return JudgeRequest(messages=messages, max_tokens=REVIEW_MAX_TOKENS)


def parse_scores(reply: str) -> list[float] | None:
    """[reference score, model score] from the reply's first line, else None."""
    words = reply.split("\n")[0].replace(",", " ").split()
    if len(words) != 2:
        return None
    try:
        first, second = float(words[0]), float(words[1])
    except ValueError:
        return None
    if not (math.isfinite(first) and math.isfinite(second)) or first <= 0 or second < 0:
        return None
    return [first, second]


def relative_score(grade: object) -> float:
    reference, model = grade  # [reference, model], from parse_scores
    return model / reference


def _relative(graded: list[Prediction]) -> float:
    reference = mean(p.meta["grade"][0] for p in graded)
    return percent(mean(p.meta["grade"][1] for p in graded) / reference) if reference else 0.0


def aggregate(predictions: list[Prediction]) -> dict[str, float]:
    """Relative scores over the graded records (the library leaves out pending grades and, as this task's
    `on_failure` says, reviews that never parsed)."""
    graded = [p for p in predictions if "grade" in p.meta]
    metrics = {"all": _relative(graded)}
    for category in CATEGORIES:
        metrics[category] = _relative([p for p in graded if p.meta["category"] == category])
    metrics["model_score"] = round(10 * mean(p.meta["grade"][1] for p in graded), 6)
    metrics["reference_score"] = round(10 * mean(p.meta["grade"][0] for p in graded), 6)
    return metrics


TASK = Task(
    name="llava_bench_wild",
    version=1,
    folder="llava_bench_wild",
    description="LLaVA-Bench-in-the-Wild, 60 open questions, judged relative to GPT-4's answers",
    load=load,
    variants={
        "llava": Variant(prompt, pending_judge, max_new_tokens=1024, image_mode="crop"),
        "lmms-eval": Variant(prompt, pending_judge, max_new_tokens=4096, image_mode="native"),
    },
    aggregate=aggregate,
    primary="all",
    kind="free",
    judged=Judged(request, parse_scores, relative_score, tries=5, on_failure="exclude"),
)
