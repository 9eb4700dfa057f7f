"""MMMU (Yue et al., 2024, "MMMU: A Massive Multi-discipline Multimodal Understanding and Reasoning
Benchmark for Expert AGI"), validation split: 900 questions, 30 subjects in 6 disciplines.

Reads a local snapshot of MMMU/MMMU in `<root>/mmmu/`: `<Subject>/validation-*.parquet` (dev and test beside
them ignored); `options` is a Python list written as a string (`ast.literal_eval`); a question's images are
those its `<image k>` markers name, once each, in order of k; the markers stay in the text.
Prompts: llava, question + "A. option" lines + MC (open: + SHORT); lmms-eval, the same with a blank line
before the instruction (images before the text, where its chat path puts each at its marker); vlmevalkit,
LLaVA_XTuner's prompt through split_MMMU, the first image only. 128 new tokens (llava, lmms-eval).
Multiple choice: the official parse (`MMMU`), lmms-eval's (`MMMU_LMMS`), VLMEvalKit's can_infer; never a
random guess. Open questions: the official parse_open_response + eval_open under llava (golds: a list's
items, also one written as a string) and lmms-eval 0.7.3 (a stored list's items, but a string is one answer:
"['24', '24.0']" matches only that text; 0.7.2 scored every open question 0); vlmevalkit reads them as
options A = the gold text, B = "Other Answers".
Metrics: `accuracy` (primary; over all questions), per discipline and per subject (snake_case keys).
Export `mmmu`: MMMU's eval-only file {id: answer} (main_eval_only.py). The test split: mmmu_test.py.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

from evalkit.data.readers import (
    Dataset,
    ParquetRow,
    Sample,
    fingerprint,
    read_benchmark,
    read_parquet_rows,
    split_files,
)
from evalkit.errors import InputError
from evalkit.protocols import MC, SHORT
from evalkit.protocols.vlmevalkit import option_prompt as vlmeval_option_prompt
from evalkit.scoring.open_answer import gold_answers, open_match
from evalkit.scoring.options import (
    MMBENCH,
    MMMU,
    MMMU_LMMS,
    Chain,
    options_from,
    render_options,
    vlmeval_open,
)
from evalkit.scoring.outcomes import grouped_accuracy, option_match
from evalkit.scoring.types import Scored
from evalkit.task import Task, Variant

DISCIPLINES = {
    "Art and Design": "Art Art_Theory Design Music",
    "Business": "Accounting Economics Finance Manage Marketing",
    "Science": "Biology Chemistry Geography Math Physics",
    "Health and Medicine": "Basic_Medical_Science Clinical_Medicine Diagnostics_and_Laboratory_Medicine "
    "Pharmacy Public_Health",
    "Humanities and Social Science": "History Literature Sociology Psychology",
    "Tech and Engineering": "Agriculture Architecture_and_Engineering Computer_Science Electronics "
    "Energy_and_Power Materials Mechanical_Engineering",
}
DISCIPLINE = {subject: d for d, subjects in DISCIPLINES.items() for subject in subjects.split()}
MULTIPLE_CHOICE = "multiple-choice"
IMAGE_COLUMNS = tuple(f"image_{k}" for k in range(1, 8))
_MARKER = re.compile(r"<image (\d+)>")


def _options(row: ParquetRow, raw: object) -> list[str]:
    """The options list from its string form, parsed as a literal (never evaluated)."""
    try:
        value = ast.literal_eval(raw) if isinstance(raw, str) else raw
    except (ValueError, SyntaxError) as exc:
        raise InputError(f"{row.where}: options is not a Python list literal: {raw!r}") from exc
    if not isinstance(value, list):
        raise InputError(f"{row.where}: options is not a list: {raw!r}")
    return [str(v) for v in value]


def image_numbers(text: str) -> list[int]:
    """The k of every `<image k>` marker in the text, once each, ascending."""
    return sorted({int(k) for k in _MARKER.findall(text)})


def sample_of(row: ParquetRow, split: str, answer: object) -> Sample:
    """The sample of a `<split>_<Subject>_<n>` row, with its gold `answer` ("" where there is none)."""
    v = row.require("id", "question", "options", "question_type")
    match = re.match(rf"{split}_(.+?)_\d+$", v["id"])
    if not match or match.group(1) not in DISCIPLINE:
        raise InputError(f"{row.where}: id {v['id']!r} names no MMMU {split} subject")
    subject = match.group(1)
    mc = v["question_type"] == MULTIPLE_CHOICE
    options = options_from(_options(row, v["options"])) if mc else {}
    numbers = image_numbers(v["question"] + render_options(options))
    if any(not 1 <= k <= len(IMAGE_COLUMNS) for k in numbers):
        raise InputError(f"{row.where}: image markers {numbers} outside image_1..image_7")
    meta = {
        "options": options,
        "question_type": v["question_type"],
        "subject": subject,
        "discipline": DISCIPLINE[subject],
        "subfield": v.get("subfield"),
        "topic_difficulty": v.get("topic_difficulty"),
    }
    if isinstance(answer, list):  # a snapshot that stores an open question's answers as a list
        meta["answer_list"] = [str(a) for a in answer]
    target = str(answer).strip() if mc else str(answer)
    return Sample(v["id"], tuple(row.image(f"image_{k}") for k in numbers), v["question"], target, meta)


def _read_authors(folder: Path) -> Dataset:
    raise InputError(f"MMMU: no parquet files under {folder} (expected <Subject>/validation-*.parquet)")


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    files = split_files(files, "validation", "MMMU (<Subject>/validation-*.parquet)")
    rows = read_parquet_rows(files, image_columns=IMAGE_COLUMNS)
    samples = [sample_of(row, "validation", row.require("answer")["answer"]) for row in rows]
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(files))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "MMMU", _read_authors, _read_parquet)


def prompt_llava(sample: Sample) -> str:
    """Question, option lines, MC (open: question, SHORT)."""
    if sample.meta["question_type"] == MULTIPLE_CHOICE:
        return sample.question + render_options(sample.meta["options"]) + MC
    return sample.question + SHORT


def prompt_lmms(sample: Sample) -> str:
    """lmms-eval construct_prompt: as llava's with a blank line before the instruction."""
    if sample.meta["question_type"] == MULTIPLE_CHOICE:
        return sample.question + render_options(sample.meta["options"]) + "\n" + MC
    return sample.question + "\n" + SHORT


def golds_official(sample: Sample) -> list[str]:
    """The official answer file's golds: a list's items (also a list written as a string)."""
    return sample.meta.get("answer_list") or gold_answers(sample.target)


def golds_lmms(sample: Sample) -> list[str]:
    """lmms-eval 0.7.3's golds: a stored list's items, else the answer string as it is."""
    return sample.meta.get("answer_list") or [sample.target]


def prompt_vlmeval(sample: Sample) -> str:
    """LLaVA_XTuner's option prompt (open questions: the letter instruction, no options) through VLMEvalKit's
    split_MMMU: each `<image k>` marker becomes a line break (the text pieces joined with "\n")."""
    return _MARKER.sub("\n", vlmeval_option_prompt(sample))


def scorer(chain: Chain, golds: Callable[[Sample], list[str]] | None) -> Callable[[str, Sample], Scored]:
    """Multiple choice through the option chain; open questions through the official open-answer rules, or
    (golds None) VLMEvalKit's: option A is the gold text, B "Other Answers", read with can_infer. A question
    without a gold (a test file before its answers came out) keeps what was read and scores 0."""
    letter = option_match(chain)

    def score(output: str, sample: Sample) -> Scored:
        if sample.meta["question_type"] == MULTIPLE_CHOICE:
            found = letter(output, sample)
        else:
            found = open_match(output, golds(sample)) if golds else vlmeval_open(output, sample.target)
        return found if sample.target else Scored(found.answer, 0.0, found.parse)

    score.__qualname__ = f"mmmu({chain.name})"
    return score


TASK = Task(
    name="mmmu_val",
    version=2,
    folder="mmmu",
    description="MMMU validation, 30 subjects (multiple choice and open questions)",
    load=load,
    variants={
        "llava": Variant(prompt_llava, scorer(MMMU, golds_official), max_new_tokens=128, image_mode="pad"),
        "lmms-eval": Variant(
            prompt_lmms,
            scorer(MMMU_LMMS, golds_lmms),
            max_new_tokens=128,
            departures=(
                "images go before the text, in <image k> order; lmms-eval's chat path puts each at its "
                "marker",
            ),
        ),
        "vlmevalkit": Variant(
            prompt_vlmeval,
            scorer(MMBENCH, None),
            image_limit=1,
            departures=("the one image sent is image 1 (VLMEvalKit: the first marker's image)",),
        ),
    },
    aggregate=grouped_accuracy("discipline", "subject"),
    primary="accuracy",
    kind="option",
    exports=("mmmu",),
)
