"""MM-Vet (Yu et al., 2023, "MM-Vet: Evaluating Large Multimodal Models for Integrated Capabilities"), 218
open questions graded by an LLM judge (`--judge`).

Reads the authors' `<root>/mmvet/mm-vet.json` ({"v1_0": {imagename, question, answer, capability: [...]}})
with images in `<root>/mmvet/images/<imagename>`; or a local snapshot of lmms-lab/MMVet (question_id,
question, answer, capability as "rec,ocr", image). Sample ids are the file's keys ("v1_0"); records keep
question, reference answer (`target`), capabilities and image name in `meta`.

Grading follows the official grader (mm-vet_evaluator.py): one user message, the rubric with few-shot
rows, then the row `question | answer | prediction |` to complete (`<AND>` / `<OR>` in the answer get a
space on each side, as there). Our rubric, in our own words, is `evalkit/data/prompts/mmvet_grader.txt`,
a template with {question}, {answer}, {prediction}; set EVALKIT_MMVET_PROMPT to the path of another file
to grade with it (same placeholders; changing the prompt changes the judge cache key). A reply is a grade
when its first word is a plain number in [0, 1] ("0.5", "0.5\\n", "0.5 because..."), like the official
`float(content.split(" ")[0])`; otherwise it is retried at rising temperature, 5 tries in all, then
scored 0 and counted in `judge_failures`. The official grader asks for max_tokens=3; we allow
GRADER_MAX_TOKENS so that a leading space or newline does not cut the number (the first word decides).
Metrics: `total` (mean grade x 100, primary) and `rec`, `ocr`, `know`, `gen`, `spat`, `math` (a sample
counts for every capability it lists); `judge_failures`, `pending` (records not graded yet: counted
nowhere else), `unparsed` and `failed` (no reply from the model: grade 0).

Protocol llava: the bare question (LLaVA's llava-mm-vet.jsonl via model_vqa), max_new_tokens 1024, plain
resize + centre crop. Protocol lmms-eval (mmvet, 0.7.2): its default pre_prompt "First please perform
reasoning, and think step by step to provide best answer to the following question: \\n\\n" before the
question (its released yaml), max_new_tokens 1024, native images. The `mmvet` export ({"v1_0": answer}, for
the official online grader) comes with the CLI; it needs only the records' ids and outputs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evalkit.data.images import ImageRef, file_ref, safe_join
from evalkit.data.readers import (
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
)
from evalkit.errors import InputError
from evalkit.records import Prediction
from evalkit.scoring.group import accuracy
from evalkit.scoring.judge import JudgeRequest, grader_text
from evalkit.task import Judged, Task, Variant, pending_judge

CAPABILITIES = ("rec", "ocr", "know", "gen", "spat", "math")
PROMPT_ENV = "EVALKIT_MMVET_PROMPT"
PROMPT_FILE = "data/prompts/mmvet_grader.txt"  # inside the evalkit package
PLACEHOLDERS = ("question", "answer", "prediction")
GRADER_MAX_TOKENS = 16
LMMS_PRE_PROMPT = (
    "First please perform reasoning, and think step by step to provide best answer to the following "
    "question: \n\n"
)
_PLACEHOLDER = re.compile(r"\{(question|answer|prediction)\}")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def _capabilities(value: Any, where: str) -> list[str]:
    caps = value.split(",") if isinstance(value, str) else value
    if not isinstance(caps, list | tuple) or not (caps := [str(c).strip() for c in caps if str(c).strip()]):
        raise InputError(f"{where}: capability must be a non-empty list, not {value!r}")
    return caps


def _sample(sid: str, item: dict[str, Any], image: ImageRef, imagename: str, where: str) -> Sample:
    meta = {"capability": _capabilities(item["capability"], where), "imagename": imagename}
    return Sample(sid, (image,), str(item["question"]), str(item["answer"]), meta)


def _read_authors(folder: Path) -> Dataset:
    file = folder / "mm-vet.json"
    data = read_json(file)
    if not isinstance(data, dict):
        raise InputError(f'{file}: expected an object keyed by question id ("v1_0": {{...}})')
    images = require_dir(folder / "images", "MM-Vet images")
    samples = []
    for key, item in data.items():
        where = f"{file}: {key}"
        require_fields(item, where, {"imagename": TEXT, "question": TEXT, "answer": TEXT, "capability": LIST})
        image = file_ref(safe_join(images, item["imagename"], where))
        samples.append(_sample(str(key), item, image, item["imagename"], where))
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint([file]))


def _read_parquet(folder: Path, files_: list[Path]) -> Dataset:
    samples = []
    for row in read_parquet_rows(files_):
        v = row.require("question_id", "question", "answer", "capability")
        name = str(v.get("image_source") or "")
        samples.append(_sample(str(v["question_id"]), v, row.image(), name, row.where))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(files_))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "MM-Vet", _read_authors, _read_parquet)


def prompt_llava(sample: Sample) -> str:
    return sample.question


def prompt_lmms(sample: Sample) -> str:
    return LMMS_PRE_PROMPT + sample.question


def grader_template() -> str:
    """The grader prompt: the file named by $EVALKIT_MMVET_PROMPT, else the packaged rubric."""
    return grader_text("MM-Vet grader prompt", PROMPT_FILE, PROMPT_ENV, PLACEHOLDERS).removesuffix("\n")


def grader_prompt(question: str, answer: str, prediction: str, template: str | None = None) -> str:
    """The template with its placeholders filled in one pass (braces in the values stay as they are)."""
    values = {
        "question": question,
        "answer": answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> "),
        "prediction": prediction,
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template or grader_template())


def request(record: Prediction) -> JudgeRequest:
    if not {"question", "target"} <= record.meta.keys():
        raise InputError(f"MM-Vet record {record.id}: question or answer missing from its meta")
    content = grader_prompt(str(record.meta["question"]), str(record.meta["target"]), record.output.strip())
    return JudgeRequest(messages=[{"role": "user", "content": content}], max_tokens=GRADER_MAX_TOKENS)


def parse_grade(reply: str) -> float | None:
    """The grade in [0, 1] that the reply starts with, else None."""
    words = reply.split()
    if not words or not _NUMBER.fullmatch(words[0]):
        return None
    grade = float(words[0])
    return grade if grade <= 1.0 else None


def aggregate(predictions: list[Prediction]) -> dict[str, float]:
    """Mean grades x 100 over the graded records (a grade that never parsed counts 0: `on_failure`)."""
    done = predictions
    metrics = {"total": accuracy(p.score for p in done)}
    found = {c for p in done for c in p.meta.get("capability", ())}
    for cap in (*CAPABILITIES, *sorted(found - set(CAPABILITIES))):
        metrics[cap] = accuracy(p.score for p in done if cap in p.meta.get("capability", ()))
    return metrics


TASK = Task(
    name="mmvet",
    version=1,
    folder="mmvet",
    description="MM-Vet, 218 open questions over six capabilities, graded 0-1 by an LLM judge",
    load=load,
    variants={
        "llava": Variant(prompt_llava, pending_judge, max_new_tokens=1024, image_mode="crop"),
        "lmms-eval": Variant(prompt_lmms, pending_judge, max_new_tokens=1024, image_mode="native"),
    },
    aggregate=aggregate,
    primary="total",
    kind="free",
    exports=("mmvet",),
    judged=Judged(request, parse_grade, float, tries=5, on_failure="zero"),
)
