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
