"""AI2D (Kembhavi et al., 2016, "A Diagram Is Worth A Dozen Images"), test split, 3088 questions.

Reads a local snapshot of the lmms-lab/ai2d parquet files in `<root>/ai2d/` (`question`, `options` list,
`answer` = option index stored as text, `image`). Sample ids are the row positions in file order.
Prompt (both protocols, as lmms-eval's "mcq" format): question, "A. option" lines, the MC instruction.
Protocol llava parses with the shared GENERAL option extractor; lmms-eval with its own filter (a leading
"B." gives the letter) then exact match ignoring case and punctuation (`AI2D_LMMS`), max_new_tokens 16.
Metric: `accuracy` (percent of questions right), plus `unparsed` and `failed`.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.data.readers import Dataset, Sample, fingerprint, read_benchmark, read_parquet_rows
from evalkit.errors import InputError
from evalkit.protocols import MC
from evalkit.scoring.options import AI2D_LMMS, GENERAL, LETTERS, options_from, render_options
from evalkit.scoring.outcomes import grouped_accuracy, option_match
from evalkit.task import Task, Variant


def _read_authors(folder: Path) -> Dataset:
    raise InputError(f"AI2D: no parquet files under {folder} (expected a snapshot of lmms-lab/ai2d)")


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    samples = []
    for n, row in enumerate(read_parquet_rows(files)):
        v = row.require("question", "options", "answer")
        options = options_from(v["options"])
        index = str(v["answer"]).strip()
        if not index.isdigit() or int(index) >= len(options):
            raise InputError(f"{row.where}: answer {v['answer']!r} is no index into {len(options)} options")
        meta = {"options": options}
        samples.append(Sample(str(n), (row.image(),), v["question"], LETTERS[int(index)], meta))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(files))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "AI2D", _read_authors, _read_parquet)


def prompt(sample: Sample) -> str:
    """lmms-eval ai2d_doc_to_text ("mcq"): question, "A. option" lines, MC; used for both protocols."""
    return sample.question + render_options(sample.meta["options"]) + MC


TASK = Task(
    name="ai2d",
    version=2,
    folder="ai2d",
    description="AI2D diagram multiple choice (test, 3088 questions)",
    load=load,
    variants={
        "llava": Variant(prompt, option_match(GENERAL), max_new_tokens=128, image_mode="pad"),
        "lmms-eval": Variant(prompt, option_match(AI2D_LMMS), max_new_tokens=16),
        "vlmevalkit": Variant(),
    },
    aggregate=grouped_accuracy(),
    primary="accuracy",
    kind="option",
)
