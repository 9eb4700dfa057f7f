"""MMStar (Chen et al., 2024, "Are We on the Right Way for Evaluating Large Vision-Language Models?").

Reads a local snapshot of the Lin-Chen/MMStar parquet file(s) in `<root>/mmstar/` (`index`, `question`
with the options inside it as "Options: A: .., B: ..", `answer` letter, `category`, `l2_category`,
`image`): split val, 1500 questions, 6 core capabilities x 3 fine-grained (l2) categories. The options
are parsed out of the question for the extractors (letters A-D with empty texts where it has none).

Protocol llava: question + MC, max_new_tokens 128, shared GENERAL option extractor. Protocol lmms-eval
(mmstar_doc_to_text): stripped question without " Please answer yes or no." + "\\nAnswer with the
option's letter from the given choices directly" (no final period), max_new_tokens 1024 (its model
default), MMStar's own matching rule (`MMSTAR`; lmms-eval used it up to v0.7.1, v0.7.2 switched to its
new `extract_mcq_answer`).
(That newer extractor is not reproduced yet: a known difference of this protocol.)
Metrics, llava: `accuracy` (micro over questions, primary), per category `<category>` (micro), the macro
figures as `macro_accuracy` / `macro_<category>`, per l2 category `l2_<name>`. lmms-eval reports the macro
figures as its headline (`accuracy` = the unweighted mean of the l2 accuracies, its "average";
`<category>` = the mean of that category's l2 accuracies), with the micro ones as `micro_...`.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from evalkit.data.readers import Dataset, Sample, fingerprint, read_benchmark, read_parquet_rows
from evalkit.errors import InputError
from evalkit.protocols import MC
from evalkit.records import Prediction
from evalkit.scoring.group import accuracy, group_by, mean, snake
from evalkit.scoring.options import GENERAL, LETTERS, MMSTAR, render_options
from evalkit.scoring.outcomes import option_match
from evalkit.scoring.twins import mmstar as twin
from evalkit.task import Task, Unit, Variant

YES_NO = " Please answer yes or no."
LMMS_SUFFIX = "\nAnswer with the option's letter from the given choices directly"
NO_OPTIONS = dict.fromkeys("ABCD", "")


def options_in_question(question: str) -> dict[str, str]:
    """{"A": text, ...} from the "Options: A: .., B: .." part of a question (letters in sequence, each
    after a comma or whitespace); NO_OPTIONS when there is none."""
    _, found, tail = question.rpartition("Options:")
    first = re.match(r"\s*A:\s*", tail) if found else None
    if not first:
        return dict(NO_OPTIONS)
    spans = [(first.start(), first.end())]
    for letter in LETTERS[1:]:
        nxt = re.compile(rf"(?:,\s*|\s+){letter}:\s").search(tail, spans[-1][1])
        if not nxt:
            break
        spans.append((nxt.start(), nxt.end()))
    ends = [start for start, _ in spans[1:]] + [len(tail)]
    return {
        LETTERS[i]: tail[span[1] : end].strip() for i, (span, end) in enumerate(zip(spans, ends, strict=True))
    }


def _read_authors(folder: Path) -> Dataset:
    raise InputError(f"MMStar: no parquet files under {folder} (expected a snapshot of Lin-Chen/MMStar)")


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    samples = []
    for row in read_parquet_rows(files):
        v = row.require("index", "question", "answer", "category", "l2_category")
        target = str(v["answer"]).strip().upper()
        options = options_in_question(v["question"])
        options = options if target in options else NO_OPTIONS | options  # letters A-D at least
        if target not in options:
            raise InputError(f"{row.where}: answer {v['answer']!r} is no option letter")
        meta = {"options": options, "category": v["category"], "l2_category": v["l2_category"]}
        samples.append(Sample(str(v["index"]), (row.image(),), v["question"], target, meta))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(files))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "MMStar", _read_authors, _read_parquet)


def prompt_llava(sample: Sample) -> str:
    return sample.question + MC


def prompt_lmms(sample: Sample) -> str:
    """lmms-eval mmstar_doc_to_text: strip, remove the yes/no instruction, add its post prompt."""
    return sample.question.strip().replace(YES_NO, "") + LMMS_SUFFIX


def prompt_vlmeval(sample: Sample) -> str:
    """VLMEvalKit's MMStar TSV keeps the options in columns: the question without its "Options:" part, then
    LLaVA_XTuner's option lines and letter instruction."""
    question = sample.question.rpartition("Options:")[0].rstrip() or sample.question
    return question + render_options({k: v for k, v in sample.options.items() if v}) + MC


def _l2_accuracies(predictions: list[Prediction]) -> dict[str, float]:
    by_l2 = group_by(predictions, lambda p: p.meta["l2_category"])
    return {l2: accuracy(p.score for p in preds) for l2, preds in sorted(by_l2.items())}


def aggregate(predictions: list[Prediction], macro: bool = False) -> dict[str, float]:
    """`accuracy` and per-category keys: micro (over questions), or - as lmms-eval reports MMStar - macro
    (the unweighted mean of the l2-category accuracies, overall and within each category); the other
    kind is kept under `micro_` / `macro_` names, and the l2 accuracies as `l2_<name>`."""
    l2 = _l2_accuracies(predictions)
    micro = {"accuracy": accuracy(p.score for p in predictions)}
    macro_values = {"accuracy": round(mean(l2.values()), 6)}
    for category, preds in sorted(group_by(predictions, lambda p: p.meta["category"]).items()):
        micro[snake(category)] = accuracy(p.score for p in preds)
        macro_values[snake(category)] = round(mean(_l2_accuracies(preds).values()), 6)
    headline, kept, prefix = (macro_values, micro, "micro_") if macro else (micro, macro_values, "macro_")
    metrics = headline | {f"{prefix}{k}": v for k, v in kept.items()}
    metrics |= {f"l2_{snake(name)}": value for name, value in l2.items()}
    return metrics


TASK = Task(
    name="mmstar",
    version=1,
    folder="mmstar",
    description="MMStar vision-indispensable multiple choice (val, 1500 questions)",
    load=load,
    variants={
        "vlmevalkit": Variant(prompt_vlmeval),
        "llava": Variant(prompt_llava, option_match(GENERAL), max_new_tokens=128, image_mode="pad"),
        "lmms-eval": Variant(
            prompt_lmms,
            option_match(MMSTAR),
            max_new_tokens=1024,
            aggregate=partial(aggregate, macro=True),
            unit=Unit(vectorised=partial(twin, macro=True)),
            departures=(
                "letters are read with MMStar's own rule (lmms-eval up to 0.7.1); lmms-eval 0.7.2+ uses its "
                "extract_mcq_answer heuristic",
            ),
        ),
    },
    aggregate=aggregate,
    primary="accuracy",
    kind="option",
    unit=Unit(vectorised=twin),
)
