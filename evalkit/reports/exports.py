"""Submission and cross-check files written from prediction records (never by rerunning a model).

Each export first checks that the folder holds a run of a task that offers it (its manifest or metrics
names the task), and every file is written atomically: a kill leaves the old file or the new one.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from evalkit.errors import InputError
from evalkit.fs import atomic_output, atomic_write
from evalkit.records import (
    MANIFEST,
    METRICS,
    PREDICTIONS,
    Manifest,
    Prediction,
    read_predictions,
    read_run_record,
)
from evalkit.scoring.vqa import evalai_process


def run_task_name(run_task_dir: Path) -> str | None:
    """The task a run folder holds, as its manifest.json (else metrics.json) records it."""
    if (manifest := run_task_dir / MANIFEST).exists():
        try:
            return Manifest.model_validate_json(manifest.read_bytes()).task
        except ValueError as exc:
            raise InputError(f"{manifest}: not an evalkit manifest ({exc.__class__.__name__})") from None
    if (metrics := run_task_dir / METRICS).exists():
        return read_run_record(metrics).task
    return None


def read_run_predictions(run_task_dir: Path, kind: str | None = None) -> list[Prediction]:
    """The run's records; with `kind`, the folder must hold a run of a task that offers that export."""
    path = run_task_dir / PREDICTIONS
    if not path.exists():
        raise InputError(f"{path}: not found (give a run's task folder, e.g. results/<model>/mme)")
    if kind is not None:
        from evalkit.registry import all_tasks

        offering = sorted(t.name for t in all_tasks().values() if kind in t.exports)
        task = run_task_name(run_task_dir)
        if task is not None and task not in offering:
            raise InputError(
                f"{run_task_dir}: holds a {task} run; `export {kind}` takes a run of {', '.join(offering)}"
            )
    return read_predictions(path)


def _one_line(text: str) -> str:
    return " ".join(text.replace("\t", " ").splitlines())


def export_mme(
    run_task_dir: Path, out: Path, data_root: Path | None = None, allow_missing: bool = False
) -> list[Path]:
    """The official MME calculation tool's input: `<subtask>.txt`, lines image<TAB>question<TAB>gt<TAB>pred.

    Questions keep their original wording (with " Please answer yes or no."); the two questions of an
    image stay adjacent, as the tool pairs consecutive lines; the prediction is the stripped reply on one
    line. Samples that failed are written with an empty prediction (the tool counts them wrong).
    """
    predictions = read_run_predictions(run_task_dir, "mme")
    by_subtask: dict[str, list[Prediction]] = defaultdict(list)
    for p in predictions:
        if "image_id" not in p.meta or "category" not in p.meta:
            raise InputError(f"{run_task_dir}: record {p.id!r} is not an MME record")
        by_subtask[p.meta["category"]].append(p)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for subtask, preds in sorted(by_subtask.items()):
        preds.sort(key=lambda p: (p.meta["image_id"], p.id))
        lines = [
            "\t".join(
                [
                    p.meta["image_id"].rsplit("/", 1)[-1],
                    p.meta["question"],
                    p.meta["target"].capitalize(),
                    _one_line(p.output.strip()),
                ]
            )
            for p in preds
        ]
        path = out / f"{subtask}.txt"
        atomic_write(path, "\n".join(lines) + "\n")
        written.append(path)
    return written


XLSX_CELL_MAX = 32_767
MMBENCH_FORMATS = (".xlsx", ".tsv")


def _mmbench_table(
    run_task_dir: Path, data_root: Path | None, allow_missing: bool
) -> tuple[list[str], list[list[str]]]:
    """Header and one row per pass (circular copies included, in index order) from MMBench records."""
    predictions = read_run_predictions(run_task_dir, "mmbench")
    if not allow_missing:
        _mmbench_complete(run_task_dir, {p.id: p for p in predictions}, data_root)
    for p in predictions:
        if "g_index" not in p.meta or "options" not in p.meta:
            raise InputError(f"{run_task_dir}: record {p.id!r} is not an MMBench record")
    predictions.sort(key=lambda p: int(p.meta["index"]))
    letters = "ABCDE" if any("E" in p.meta["options"] for p in predictions) else "ABCD"
    with_answer = any(p.meta.get("target") for p in predictions)
    header = ["index", "question", "hint", *letters, "prediction", "category", "l2-category", "split"]
    rows = []
    for p in predictions:
        m = p.meta
        hint = "" if m["hint"] is None else m["hint"]  # a missing hint is an empty cell, as pandas writes NaN
        row = [str(m["index"]), m["question"], hint, *(m["options"].get(k, "") for k in letters)]
        row += [p.output, m["category"], m["l2_category"], m["split"]]
        rows.append([*row, m["target"]] if with_answer else row)
    return header + (["answer"] if with_answer else []), rows


def _mmbench_complete(run_task_dir: Path, predictions: dict[str, Prediction], data_root: Path | None) -> None:
    """Refuse a file missing passes (a --limit run, failed samples): the server would score them wrong."""
    from evalkit.registry import get_task

    name = run_task_name(run_task_dir)
    if name is None:
        raise InputError(
            f"{run_task_dir}: no manifest.json or metrics.json names the task, so whether every pass is "
            "answered cannot be checked; pass --allow-missing to export the records as they are"
        )
    task = get_task(name)
    folder = run_data_folder(run_task_dir, task.folder, data_root)
    ids = [s.id for s in task.load(folder).samples]
    _unanswered(run_task_dir, ids, predictions, f"{task.name} passes")


def export_mmbench(
    run_task_dir: Path, out: Path, data_root: Path | None = None, allow_missing: bool = False
) -> list[Path]:
    """The file the MMBench server takes: `.xlsx` (every cell but the numeric index is text, so "=A1" stays
    a string) or `.tsv`, chosen by `out`'s suffix; a folder gets `<task>.xlsx`. Columns index, question,
    hint, A-D (E when any question has it), prediction (the raw reply), category, l2-category, split
    (+ answer when known). xlsx cannot hold control characters (they are dropped there) nor cells over
    32,767 characters."""
    if not out.suffix:
        out = out / f"{run_task_dir.name}.xlsx"
    if out.suffix.lower() not in MMBENCH_FORMATS:
        raise InputError(f"{out}: the MMBench export is .xlsx or .tsv")
    header, rows = _mmbench_table(run_task_dir, data_root, allow_missing)
    if out.suffix.lower() == ".tsv":
        with atomic_output(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerows([header, *rows])
        return [out]
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook()
    sheet = book.active
    for r, row in enumerate([header, *rows], 1):
        for c, value in enumerate(row, 1):
            if len(value) > XLSX_CELL_MAX:
                raise InputError(
                    f"{run_task_dir}: record {row[0]} has a {header[c - 1]} of {len(value):,} characters, "
                    f"over xlsx's {XLSX_CELL_MAX:,} per cell; export to a .tsv file instead"
                )
            if r > 1 and c == 1:  # the index is a number, as LLaVA's converter writes it (matched on int)
                sheet.cell(row=r, column=c, value=int(value))
                continue
            cell = sheet.cell(row=r, column=c, value=ILLEGAL_CHARACTERS_RE.sub("", value))
            cell.data_type = "s"  # never a formula or an error code, whatever the text starts with
    with atomic_output(out) as tmp:
        book.save(tmp)
    return [out]


def run_data_folder(run_task_dir: Path, folder: str, data_root: Path | None) -> Path:
    """The benchmark folder a run read: `<data_root>/<folder>` when a root is given, else the one its
    metrics.json names (exports that list every test question need the question files)."""
    if data_root is not None:
        path = data_root / folder
    else:
        metrics = run_task_dir / METRICS
        if not metrics.exists():
            raise InputError(
                f"{metrics}: not found, so the run's data folder is unknown "
                "(finish the run with the same command, or give --data-root DIR)"
            )
        path = Path(read_run_record(metrics).data.path)
        path = path.parent if path.is_file() else path  # a benchmark read from one file (an MMBench TSV)
    if not path.is_dir():
        raise InputError(f"{path}: data folder not found (give --data-root DIR, the root holding {folder}/)")
    return path


def _write_json(out: Path, default_name: str, entries: object) -> list[Path]:
    """`out`, or `out/<default_name>.json` when `out` has no suffix (a folder)."""
    path = out if out.suffix else out / f"{default_name}.json"
    atomic_write(path, json.dumps(entries))
    return [path]


def _answer(prediction: Prediction | None) -> str:
    return "" if prediction is None or prediction.failed else evalai_process(prediction.output)


def _unanswered(run_task_dir: Path, ids: list[str], predictions: dict[str, Prediction], what: str) -> None:
    """Refuse to export while questions have no answer: a blank entry would silently count as wrong."""
    missing = [i for i in ids if i not in predictions]
    failed = [i for i in ids if i in predictions and predictions[i].failed]
    if missing or failed:
        raise InputError(
            f"{run_task_dir}: {len(missing) + len(failed)} of {len(ids)} {what} have no answer "
            f"({len(missing)} not run, {len(failed)} failed; first: {(missing + failed)[0]}); run the "
            "same `evalkit run` command again (it resumes and retries failed samples), then export "
            "(or pass --allow-missing to export them blank)"
        )


def export_vqav2(
    run_task_dir: Path, out: Path, data_root: Path | None = None, allow_missing: bool = False
) -> list[Path]:
    """The VQAv2 EvalAI file: `[{"question_id", "answer"}]` for every question of
    v2_OpenEnded_mscoco_test2015_questions.json, in its order: a test-dev question gets the EvalAI-processed
    raw reply, every other test2015 question "" (as LLaVA's convert_vqav2_for_submission writes it). Test-dev
    questions without an answer (not run, or failed) stop the export unless `allow_missing` (then "")."""
    from evalkit_tasks.vqav2 import test2015_question_ids

    from evalkit.registry import get_task

    folder = run_data_folder(run_task_dir, "vqav2", data_root)
    ids = test2015_question_ids(folder)
    known = set(ids)
    predictions = {p.id: p for p in read_run_predictions(run_task_dir, "vqav2")}
    for pid in predictions:
        if not pid.isdigit() or int(pid) not in known:
            raise InputError(
                f"{run_task_dir}: record {pid!r} is no VQAv2 test2015 question "
                "(export vqav2 takes a vqav2_testdev run's folder)"
            )
    if not allow_missing:
        testdev = [s.id for s in get_task("vqav2_testdev").load(folder).samples]
        _unanswered(run_task_dir, testdev, predictions, "VQAv2 test-dev questions")
    answers = {int(i): _answer(p) for i, p in predictions.items()}
    entries: list[dict[str, object]] = [{"question_id": q, "answer": answers.get(q, "")} for q in ids]
    return _write_json(out, run_task_dir.name, entries)


def export_vizwiz(
    run_task_dir: Path, out: Path, data_root: Path | None = None, allow_missing: bool = False
) -> list[Path]:
    """The VizWiz server file: `[{"image", "answer"}]`, one per question of test.json in its order, the
    answer EvalAI-processed. Every question needs a reply (LLaVA's converter asserts it): questions not run
    or failed are an error that says how many, so that the run can be resumed first."""
    from evalkit.registry import get_task

    task = get_task("vizwiz_test")
    predictions = {p.id: p for p in read_run_predictions(run_task_dir, "vizwiz")}
    samples = task.load(run_data_folder(run_task_dir, task.folder, data_root)).samples
    known = {s.id for s in samples}
    if stray := [i for i in predictions if i not in known]:
        raise InputError(
            f"{run_task_dir}: {len(stray)} record(s) are no VizWiz test question, e.g. {stray[0]!r} "
            "(export vizwiz takes a vizwiz_test run's folder)"
        )
    if not allow_missing:
        _unanswered(run_task_dir, [s.id for s in samples], predictions, "VizWiz test questions")
    entries: list[dict[str, object]] = [
        {"image": s.id, "answer": _answer(predictions.get(s.id))} for s in samples
    ]
    return _write_json(out, run_task_dir.name, entries)


def export_mmvet(
    run_task_dir: Path, out: Path, data_root: Path | None = None, allow_missing: bool = False
) -> list[Path]:
    """The file MM-Vet's online grader takes: `{"v1_0": answer, ...}` for every question of mm-vet.json in
    its order, the answer the model's reply (stripped). Unanswered questions stop the export unless
    `allow_missing` (then "")."""
    from evalkit.registry import get_task

    task = get_task("mmvet")
    predictions = {p.id: p for p in read_run_predictions(run_task_dir, "mmvet")}
    ids = [s.id for s in task.load(run_data_folder(run_task_dir, task.folder, data_root)).samples]
    if stray := [i for i in predictions if i not in set(ids)]:
        raise InputError(
            f"{run_task_dir}: record {stray[0]!r} is no MM-Vet question (export mmvet takes an mmvet run)"
        )
    if not allow_missing:
        _unanswered(run_task_dir, ids, predictions, "MM-Vet questions")
    answers = {
        i: "" if i not in predictions or predictions[i].failed else predictions[i].output.strip() for i in ids
    }
    return _write_json(out, run_task_dir.name, answers)


def export_mmmu(
    run_task_dir: Path, out: Path, data_root: Path | None = None, allow_missing: bool = False
) -> list[Path]:
    """MMMU's answer file (`main_eval_only.py`'s input, the form its EvalAI test server took): `{id: answer}`
    for every question of the run's split in the data's order. A multiple-choice question gets the letter
    read from the reply ("" where none was read: wrong, never a random guess); an open question the stripped
    reply, which MMMU's evaluation parses itself. Unanswered questions stop the export unless
    `allow_missing` (then "")."""
    from evalkit.registry import get_task

    predictions = {p.id: p for p in read_run_predictions(run_task_dir, "mmmu")}
    if (name := run_task_name(run_task_dir)) is None:
        raise InputError(
            f"{run_task_dir}: no manifest.json or metrics.json names the task (mmmu_val, mmmu_test)"
        )
    task = get_task(name)
    ids = [s.id for s in task.load(run_data_folder(run_task_dir, task.folder, data_root)).samples]
    if stray := sorted(set(predictions) - set(ids)):
        raise InputError(f"{run_task_dir}: record {stray[0]!r} is no {name} question of the data")
    if not allow_missing:
        _unanswered(run_task_dir, ids, predictions, f"{name} questions")

    def answer(p: Prediction | None) -> str:
        if p is None or p.failed:
            return ""
        return (p.answer or "") if p.meta["question_type"] == "multiple-choice" else p.output.strip()

    return _write_json(out, run_task_dir.name, {i: answer(predictions.get(i)) for i in ids})


Export = Callable[..., list[Path]]  # (run task folder, out, data_root=None, allow_missing=False) -> files
EXPORTS: dict[str, Export] = {
    "mme": export_mme,
    "mmbench": export_mmbench,
    "vqav2": export_vqav2,
    "vizwiz": export_vizwiz,
    "mmvet": export_mmvet,
    "mmmu": export_mmmu,
}  # an export kind names the tasks offering it in their `Task.exports`


def register_export(name: str, writer: Export) -> None:
    if name in EXPORTS:
        raise InputError(f"export {name!r} is registered twice")
    EXPORTS[name] = writer
