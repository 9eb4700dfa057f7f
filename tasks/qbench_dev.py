"""Q-Bench LLVisionQA dev (Wu et al., 2024, "Q-Bench: A Benchmark for General-Purpose Foundation Models on
Low-level Vision").

Reads `<root>/qbench/llvisionqa_dev.json` ([{img_path, question, candidates, correct_ans (the option text),
type, concern}], 1495 questions; ids are the list positions) with images in `<root>/qbench/images/`, or a
local snapshot of q-future/Q-Bench-HF (dev files: option0..option3 with "N/A" for absent, correct_choice
letter, question_type 0-2, question_concern 0-3, id). Integer types/concerns are named with the lists
below (lmms-eval's); names given as strings pass through.
Metrics: `accuracy` (primary), per type (`yes_no`, `how`, `what`) and per concern (`global_distortion`,
`global_others`, `local_distortion`, `local_others`).

Protocol llava (LLaVA-1.5 model_vqa_qbench): question + "\\nChoose between one of the options as
follows:\\n" + "A. c\\n" per candidate; max_new_tokens 1024; plain resize + centre crop; the shared
`GENERAL` extraction (a letter or the option text). LLaVA and ShareGPT4V ran Q-Bench with the language
model loaded in 8-bit (load_pretrained_model(..., load_8bit=True)); evalkit does not imitate that.
Protocol lmms-eval (qbench_dev): question + "\\n" + "A. c" lines + "\\nAnswer with the option's letter from
the given choices directly.\\n"; max_new_tokens 32; native images; lmms-eval's MMMU-style parse
(`MMMU_LMMS`) without its random pick for unreadable replies (those are unparsed and wrong).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.data.images import ImageRef, file_ref, safe_join
from evalkit.data.readers import (
    ID,
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
from evalkit.protocols import MC
from evalkit.scoring.options import GENERAL, LETTERS, MMMU_LMMS, options_from, render_options
from evalkit.scoring.outcomes import grouped_accuracy, option_match
from evalkit.task import Task, Variant

TYPES = ["Yes/No", "How", "What"]
CONCERNS = ["Global Distortion", "Global Others", "Local Distortion", "Local Others"]
SPLIT = "dev"


def _name(value: Any, names: list[str], where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    raise InputError(f"{where}: {value!r} is neither a name nor an index into {names}")


def _sample(
    sid: str, q: dict[str, Any], options: list[str], target: str, image: ImageRef, where: str
) -> Sample:
    opts = options_from(options)
    if target not in opts:
        raise InputError(f"{where}: answer {target!r} is not one of its {len(opts)} options")
    kind, concern = _name(q["type"], TYPES, where), _name(q["concern"], CONCERNS, where)
    return Sample(sid, (image,), q["question"], target, {"options": opts, "type": kind, "concern": concern})


def _read_authors(folder: Path) -> Dataset:
    path = folder / f"llvisionqa_{SPLIT}.json"
    items = read_json(path)
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a list of questions")
    images = require_dir(folder / "images", "Q-Bench images")
    samples = []
    for k, q in enumerate(items):
        where = f"{path}: item {k}"
        fields = {"img_path": TEXT, "question": TEXT, "candidates": LIST, "correct_ans": TEXT}
        require_fields(q, where, fields | {"type": ID, "concern": ID})
        candidates = [str(c) for c in q["candidates"]]
        if q["correct_ans"] not in candidates:
            raise InputError(f"{where}: correct_ans {q['correct_ans']!r} is not among the candidates")
        target, image = LETTERS[candidates.index(q["correct_ans"])], safe_join(images, q["img_path"], where)
        samples.append(_sample(str(k), q, candidates, target, file_ref(image), where))
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint([path]))


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    dev = split_files(files, SPLIT, "Q-Bench snapshot")
    samples = []
    for k, row in enumerate(read_parquet_rows(dev)):
        v = row.require("question", "option0", "correct_choice", "question_type", "question_concern")
        options = [o for o in (v.get(f"option{i}") for i in range(4)) if o is not None and o != "N/A"]
        q = {"question": v["question"], "type": v["question_type"], "concern": v["question_concern"]}
        sid = str(v["id"]) if v.get("id") is not None else str(k)
        samples.append(_sample(sid, q, options, str(v["correct_choice"]).strip(), row.image(), row.where))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(dev))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "Q-Bench", _read_authors, _read_parquet)


def prompt_llava(sample: Sample) -> str:
    """LLaVA model_vqa_qbench (lang en): every option line ends with a newline; no suffix."""
    return sample.question + "\nChoose between one of the options as follows:" + _lines(sample) + "\n"


def prompt_lmms(sample: Sample) -> str:
    """lmms-eval q_bench_doc_to_text: question, options, then the post prompt, which ends in a newline."""
    return sample.question + _lines(sample) + MC + "\n"


def _lines(sample: Sample) -> str:
    return render_options(sample.meta["options"])


TASK = Task(
    name="qbench_dev",
    version=2,
    folder="qbench",
    description="Q-Bench LLVisionQA dev: low-level perception, 2-4 options",
    load=load,
    variants={
        "llava": Variant(
            prompt_llava,
            option_match(GENERAL),
            max_new_tokens=1024,
            image_mode="crop",
            departures=(
                "LLaVA ran Q-Bench with the language model in 8-bit; evalkit uses the dtype asked for",
            ),
        ),
        "lmms-eval": Variant(prompt_lmms, option_match(MMMU_LMMS), max_new_tokens=32, image_mode="native"),
    },
    aggregate=grouped_accuracy("type", "concern"),
    primary="accuracy",
    kind="option",
)
