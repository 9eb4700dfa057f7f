r"""MMMU (Yue et al., 2024, "MMMU: A Massive Multi-discipline Multimodal Understanding and Reasoning
Benchmark for Expert AGI"), test split: 10,500 questions, 30 subjects in 6 disciplines; read, prompted and
scored as `mmmu_val` (mmmu_val.py, whose rules this module composes).

Reads `<root>/mmmu/<Subject>/test-*.parquet` (the MMMU/MMMU snapshot; validation and dev files beside them
ignored). Its answers were withheld (`answer` "?") until MMMU released them on 2026-02-12 as
`answer_dict_test.json` in its repository (`mmmu/`, the layout of `answer_dict_val.json`: {id:
{"question_type", "ground_truth": text or list}}), for its eval pipeline; put that file in `<root>/mmmu/`.
A parquet `answer` column that is filled is read too, a list written as its Python literal as that list
(where both give an answer, they must agree); an answer file answering none of the questions is refused.
Every question answered: the val metrics (`accuracy`, primary; per discipline and subject) plus
`published_answers`; none: only `answered`, and `evalkit export mmmu` writes the file MMMU's EvalAI server
took; some but not all: refused at load, naming the first question without an answer.
Protocol lmms-eval follows lmms-eval 0.7.3's mmmu_test.yaml, not its mmmu_val.yaml: the task sets no prompt
kwargs, so construct_prompt ends the text with "\n\n" and no instruction; 512 new tokens; images before the
text (mmmu_test has no chat messages builder).
"""

from __future__ import annotations

from pathlib import Path

from evalkit_tasks import mmmu_val
from evalkit_tasks.mmmu_val import IMAGE_COLUMNS, MULTIPLE_CHOICE, golds_lmms, sample_of, scorer

from evalkit.data.answers import WITHHELD, answers_present, scored_if_answered
from evalkit.data.readers import (
    TEXT,
    Dataset,
    ParquetRow,
    Sample,
    fingerprint,
    read_benchmark,
    read_json,
    read_parquet_rows,
    require_fields,
    split_files,
)
from evalkit.errors import InputError
from evalkit.scoring.open_answer import gold_answers
from evalkit.scoring.options import MMMU_LMMS, render_options
from evalkit.scoring.outcomes import grouped_accuracy
from evalkit.task import Task, Variant

ANSWER_FILE = "answer_dict_test.json"
Gold = str | list[str]


def read_answer_file(path: Path) -> dict[str, Gold]:
    """`{id: ground_truth}` from MMMU's answer dict (`{id: {"question_type", "ground_truth"}}`)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object {{id: {{question_type, ground_truth}}}}")
    golds: dict[str, Gold] = {}
    for qid, entry in data.items():
        value = require_fields(entry, f"{path}: {qid}", {"ground_truth": (TEXT, list)})["ground_truth"]
        golds[qid] = [str(v) for v in value] if isinstance(value, list) else value
    return golds


def _gold(value: object) -> Gold:
    """A gold as both sources give it: a list's items as text; a string holding a Python-literal list of
    strings (MMMU's parquet form of an open question's answers) is that list, read by the rule golds_official
    applies to val's column (gold_answers); any other string as it is."""
    if isinstance(value, list):
        return [str(v) for v in value]
    text = "" if value is None or str(value).strip() in WITHHELD else str(value)
    items = gold_answers(text)
    return items if items != [text] else text


def _answer(row: ParquetRow, golds: dict[str, Gold], source: Path) -> Gold:
    """The row's gold: the answer file's, else its own `answer` cell; "" where neither gives one."""
    own, given = _gold(row.values.get("answer")), _gold(golds.get(str(row.values.get("id")), ""))
    items = [[a.strip() for a in ([g] if isinstance(g, str) else g)] for g in (own, given)]
    if own and given and items[0] != items[1]:
        raise InputError(f"{row.where}: answer {own!r}, but {source.name} gives {given!r} for this id")
    return given or own


def _read_authors(folder: Path) -> Dataset:
    raise InputError(f"MMMU: no parquet files under {folder} (expected <Subject>/test-*.parquet)")


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    files = split_files(files, "test", "MMMU (<Subject>/test-*.parquet)")
    source = folder / ANSWER_FILE
    golds = read_answer_file(source) if source.is_file() else {}
    rows = list(read_parquet_rows(files, image_columns=IMAGE_COLUMNS))
    if source.is_file() and not any(str(row.values.get("id")) in golds for row in rows):
        raise InputError(f"{source}: answers none of the {len(rows):,} test questions")
    answered = [(row, _answer(row, golds, source)) for row in rows]
    what = f"MMMU test ({source if golds else 'answer column of the parquet files'})"
    answers_present([(f"{row.where} ({row.values.get('id')})", bool(a)) for row, a in answered], what)
    samples = [sample_of(row, "test", answer) for row, answer in answered]
    used = [*files, source] if golds else files
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(used))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "MMMU", _read_authors, _read_parquet)


def prompt_lmms(sample: Sample) -> str:
    """lmms-eval's mmmu_test: construct_prompt without prompt kwargs (options, "\\n\\n", no instruction)."""
    if sample.meta["question_type"] == MULTIPLE_CHOICE:
        return sample.question + render_options(sample.meta["options"]) + "\n\n"
    return sample.question + "\n\n"


VAL = mmmu_val.TASK
TASK = Task(
    name="mmmu_test",
    version=1,
    folder="mmmu",
    description="MMMU test, 30 subjects: scored with the published answers, else the EvalAI file",
    load=load,
    variants={
        "llava": VAL.variants["llava"],
        "lmms-eval": Variant(prompt_lmms, scorer(MMMU_LMMS, golds_lmms), max_new_tokens=512),
        "vlmevalkit": VAL.variants["vlmevalkit"],
    },
    aggregate=scored_if_answered(grouped_accuracy("discipline", "subject"), published=True),
    primary="accuracy",
    kind="option",
    exports=("mmmu",),
)
