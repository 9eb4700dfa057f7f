r"""MMBench EN/CN and CCBench (Liu et al., 2023, "MMBench: Is Your Multi-modal Model an All-around Player?").

Reads `<root>/mmbench/`: MMBench_DEV_EN.tsv, MMBench_TEST_EN.tsv, MMBench_DEV_CN.tsv, MMBench_TEST_CN.tsv,
CCBench.tsv (or LLaVA's mmbench_{dev,test}_20230712.tsv, mmbench_{dev,test}_cn_20231003.tsv), else a local
lmms-lab/MMBench snapshot (`{en,cn,cc}/{dev,test}-*.parquet`); v1.1's MMBench_TEST_{EN,CN}_V11.tsv (answers
out since the server closed, 2026-03-31). Circular evaluation: a question with n options is asked n times,
options rotated left, the answer letter moved. Files that already hold the rotated copies (index +
k*1_000_000) are used as they are; otherwise the passes are made here with the same ids. Metrics: `overall`
(a question counts only when every pass is right; primary), `vanilla` (pass 0 only), per category and
l2-category (circular, snake_case keys), `unparsed`, `failed`. A test file with every answer adds
`published_answers`; none: `answered` only; some: refused.

Protocol llava: LLaVA model_vqa_mmbench (hint line, "\nA. text" options, MC / MC_CN, pad, 1024 tokens).
Protocol lmms-eval follows lmms-eval 0.7.3's code, not BENCHMARKS.md's older note: "There are several
options:\nA. ..." after "{hint} {question} ", then "\n" + post prompt (a blank line before it); CN and CCBench
use the Chinese post prompt; EN drops a hint that is missing or "nan", CN drops only a missing one (lmms-lab's
parquet stores some missing hints as the string "nan", which lmms-eval CN keeps); a hint that is the empty
string is not missing (pd.notna), so the prompt opens with a space; CCBench never uses the hint; 1024 tokens
EN, 256 CN/CC. A TSV cell pandas reads as missing (empty, "nan", "NA") is a missing hint (as LLaVA reads it).
Scoring: MMBench's official matching (`MMBENCH`, VLMEvalKit's can_infer: the server's, LLaVA's numbers');
lmms-eval's own scores come from a GPT judge, played here by the judge matcher (`--judge --judge-matcher`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from evalkit.data.answers import answers_present, scored_if_answered
from evalkit.data.images import ImageRef
from evalkit.data.mcq import Row, circular_passes, is_missing, parquet_rows, present, tsv_rows
from evalkit.data.readers import Dataset, Sample, fingerprint, require_dir
from evalkit.errors import InputError
from evalkit.protocols import MC, MC_CN
from evalkit.records import Prediction
from evalkit.scoring.group import accuracy, all_correct_rate, group_by, snake
from evalkit.scoring.options import LETTERS, MMBENCH, options_from, render_options
from evalkit.scoring.outcomes import option_match
from evalkit.scoring.twins import mmbench as twin
from evalkit.task import Task, Unit, Variant

CIRCULAR = 1_000_000
OPTION_COLUMNS = "ABCDE"
LMMS_POST = {
    "en": "\nAnswer with the option's letter from the given choices directly.",
    "cn": "\n请直接使用所提供的选项字母作为答案回答。",
}
TITLES = {"en": "MMBench English {part}", "cn": "MMBench Chinese {part}", "cc": "CCBench (Chinese culture)"}


@dataclass(frozen=True)
class Split:
    name: str
    files: tuple[str, ...]  # the official name, then LLaVA's
    lang: str  # "en" | "cn" | "cc": also the lmms-lab/MMBench config
    part: str  # "dev" | "test" | "test_v11": also the snapshot's split (lmms-lab/MMBench: dev, test)
    withheld: bool = False  # answers withheld at release (published since): scored ones say so


def _sample(
    values: dict[str, str | None], image: ImageRef, index: int, options: list[str], answer: str
) -> Sample:
    meta = {
        "options": options_from(options),
        "index": index,
        "g_index": index % CIRCULAR,
        "pass": index // CIRCULAR,
        "hint": values.get("hint"),
        "category": values.get("category") or "",
        "l2_category": values.get("l2-category") or "",
        "split": values.get("split") or "",
    }
    question = values.get("question") or ""
    return Sample(str(index), (image,), question, answer, meta, group=str(index % CIRCULAR))


def _samples(rows: list[Row], what: str) -> list[Sample]:
    """Samples from the file's rows (answered all or none): its own circular copies, else generated passes."""
    parsed: list[tuple[int, dict[str, str], str, list[str], str]] = []
    images: dict[int, ImageRef] = {}
    for values, image, where in rows:
        if not (values.get("index") or "").strip().isdigit():
            raise InputError(f"{where}: index {values.get('index')!r} is not a number")
        index = int(values["index"] or "")
        options = present([values.get(c.lower()) for c in OPTION_COLUMNS])
        answer = "" if is_missing(cell := (values.get("answer") or "").strip().upper()) else cell
        if image is not None:
            images.setdefault(index % CIRCULAR, image)  # every pass of a question shares one image
        parsed.append((index, values, where, options, answer))
    answers_present([(where, bool(answer)) for _, _, where, _, answer in parsed], what)
    file_passes = any(index >= CIRCULAR for index, *_ in parsed)
    samples: list[Sample] = []
    for index, values, where, options, answer in parsed:
        if (image := images.get(index % CIRCULAR)) is None:
            raise InputError(f"{where}: row {index} has no image")
        if file_passes:
            samples.append(_sample(values, image, index, options, answer))
            continue
        if answer not in LETTERS[: len(options)]:  # the answer's option is cut off (a missing-looking cell):
            samples.append(_sample(values, image, index, options, answer))  # as LLaVA shows it; one pass
            continue
        for k, (rotated, letter) in enumerate(circular_passes(options, answer or None)):
            samples.append(_sample(values, image, index + k * CIRCULAR, rotated, letter or ""))
    return samples


def _loader(split: Split) -> Callable[[Path], Dataset]:
    def load(folder: Path) -> Dataset:
        require_dir(folder, "MMBench data")
        for name in split.files:
            if (path := folder / name).is_file():
                rows = tsv_rows(path, require=("answer",) if split.part == "dev" else ())
                return Dataset(_samples(rows, name), path, "authors", fingerprint([path]))
        snapshot = f"{split.lang}/{split.part}-*.parquet"
        files = sorted(p for p in folder.rglob(f"{split.part}-*.parquet") if p.parent.name == split.lang)
        if not files:
            raise InputError(f"{split.name}: none of {', '.join(split.files)} in {folder} (nor {snapshot})")
        rows = parquet_rows(files, require=("answer",) if split.part == "dev" else ())
        return Dataset(_samples(rows, snapshot), folder, "hf-parquet", fingerprint(files))

    return load


def prompt_llava(sample: Sample, suffix: str) -> str:
    """LLaVA model_vqa_mmbench: [hint + "\\n"] + question + "\\nA. text"... + MC suffix."""
    hint = sample.meta["hint"]
    question = sample.question if is_missing(hint) else hint + "\n" + sample.question
    return question + render_options(sample.meta["options"]) + suffix


def prompt_lmms(sample: Sample, lang: str) -> str:
    """lmms-eval 0.7.3 mmbench_doc_to_text (en_utils / cn_utils / cc_utils)."""
    options = sample.meta["options"]
    block = ("There are several options:\n" + "\n".join(f"{k}. {v}" for k, v in options.items())).rstrip("\n")
    hint = sample.meta["hint"]
    # EN: pd.notna and != "nan"; CN: pd.notna only; CCBench (cc_utils) never shows a hint; "" is not NA
    use_hint = lang != "cc" and hint is not None and (lang == "cn" or hint != "nan")
    query = f"{hint} {sample.question} {block}" if use_hint else f"{sample.question} {block}"
    return f"{query}\n{LMMS_POST['en' if lang == 'en' else 'cn']}"


def aggregate(predictions: list[Prediction]) -> dict[str, float]:
    """Circular accuracy per question (every pass right), overall and per category / l2-category."""
    groups = group_by(predictions, lambda p: p.meta["g_index"])
    main = {g: min(preds, key=lambda p: p.meta["index"]).meta for g, preds in groups.items()}

    def circular(preds: list[Prediction]) -> float:
        return all_correct_rate(preds, lambda p: p.meta["g_index"], lambda p: p.score == 1.0)

    metrics = {"overall": circular(predictions)}
    metrics["vanilla"] = accuracy(p.score for p in predictions if p.meta["pass"] == 0)
    for column in ("l2_category", "category"):  # keyed by the question's own (pass 0) row
        if any(m[column] for m in main.values()):
            by_name = group_by(predictions, lambda p, c=column: snake(main[p.meta["g_index"]][c]))
            metrics |= {name: circular(preds) for name, preds in sorted(by_name.items())}
    return metrics


SPLITS = (
    Split("mmbench_en_dev", ("MMBench_DEV_EN.tsv", "mmbench_dev_20230712.tsv"), "en", "dev"),
    Split("mmbench_en_test", ("MMBench_TEST_EN.tsv", "mmbench_test_20230712.tsv"), "en", "test", True),
    Split("mmbench_cn_dev", ("MMBench_DEV_CN.tsv", "mmbench_dev_cn_20231003.tsv"), "cn", "dev"),
    Split("mmbench_cn_test", ("MMBench_TEST_CN.tsv", "mmbench_test_cn_20231003.tsv"), "cn", "test", True),
    Split("ccbench", ("CCBench.tsv",), "cc", "test"),  # its answers were always in the file
    Split("mmbench_en_test_v11", ("MMBench_TEST_EN_V11.tsv",), "en", "test_v11", True),
    Split("mmbench_cn_test_v11", ("MMBench_TEST_CN_V11.tsv",), "cn", "test_v11", True),
)


def _task(split: Split) -> Task:
    suffix, lmms_tokens = (MC, 1024) if split.lang == "en" else (MC_CN, 256)
    llava = Variant(partial(prompt_llava, suffix=suffix), option_match(MMBENCH), 1024, image_mode="pad")
    lmms = Variant(
        partial(prompt_lmms, lang=split.lang),
        option_match(MMBENCH),
        lmms_tokens,
        image_mode="native",
        departures=(
            "lmms-eval scores MMBench with a GPT judge (its MMBench_Evaluator); evalkit matches replies with "
            "MMBench's official rule, and asks a judge only with --judge --judge-matcher",
        ),
    )
    return Task(
        name=split.name,
        version=3 if split.withheld else 2,  # 3: published test answers
        folder="mmbench",
        description=TITLES[split.lang].format(part=split.part) + ", circular multiple choice",
        load=_loader(split),
        variants={"llava": llava, "lmms-eval": lmms, "vlmevalkit": Variant()},
        aggregate=scored_if_answered(aggregate, split.withheld, question="g_index"),
        primary="overall",
        kind="option",
        exports=("mmbench",),
        unit=Unit(("g_index",), "circular group", vectorised=twin),
    )


TASKS = [_task(split) for split in SPLITS]
