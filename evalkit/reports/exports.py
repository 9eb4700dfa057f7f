"""Submission and cross-check files written from prediction records (never by rerunning a model)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from evalkit.errors import InputError
from evalkit.records import PREDICTIONS, Prediction, read_predictions


def read_run_predictions(run_task_dir: Path) -> list[Prediction]:
    path = run_task_dir / PREDICTIONS
    if not path.exists():
        raise InputError(f"{path}: not found (give a run's task folder, e.g. results/<model>/mme)")
    return read_predictions(path)


def _one_line(text: str) -> str:
    return " ".join(text.replace("\t", " ").splitlines())


def export_mme(run_task_dir: Path, out: Path) -> list[Path]:
    """The official MME calculation tool's input: `<subtask>.txt`, lines image<TAB>question<TAB>gt<TAB>pred.

    Questions keep their original wording (with " Please answer yes or no."); the two questions of an
    image stay adjacent, as the tool pairs consecutive lines; the prediction is the stripped reply on one
    line. Samples that failed are written with an empty prediction (the tool counts them wrong).
    """
    predictions = read_run_predictions(run_task_dir)
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
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


XLSX_CELL_MAX = 32_767
MMBENCH_FORMATS = (".xlsx", ".tsv")


def _mmbench_table(run_task_dir: Path) -> tuple[list[str], list[list[str]]]:
    """Header and one row per pass (circular copies included, in index order) from MMBench records."""
    predictions = read_run_predictions(run_task_dir)
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
        row = [str(m["index"]), m["question"], m["hint"], *(m["options"].get(k, "") for k in letters)]
        row += [p.output, m["category"], m["l2_category"], m["split"]]
        rows.append([*row, m["target"]] if with_answer else row)
    return header + (["answer"] if with_answer else []), rows


def export_mmbench(run_task_dir: Path, out: Path) -> list[Path]:
    """The file the MMBench server takes: `.xlsx` (every cell but the numeric index is text, so "=A1" stays
    a string) or `.tsv`, chosen by `out`'s suffix; a folder gets `<task>.xlsx`. Columns index, question,
    hint, A-D (E when any question has it), prediction (the raw reply), category, l2-category, split
    (+ answer when known). xlsx cannot hold control characters (they are dropped there) nor cells over
    32,767 characters."""
    if not out.suffix:
        out = out / f"{run_task_dir.name}.xlsx"
    if out.suffix.lower() not in MMBENCH_FORMATS:
        raise InputError(f"{out}: the MMBench export is .xlsx or .tsv")
    header, rows = _mmbench_table(run_task_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".tsv":
        import csv

        with out.open("w", encoding="utf-8", newline="") as f:
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
    book.save(out)
    return [out]
