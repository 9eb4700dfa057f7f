"""`evalkit demo`: proves the image path on the bundled MME and POPE samples, offline, in about a minute.

It builds two tiny LLaVA checkpoints (the same architecture and seed: one trained on synthetic colours, one
untrained) and runs `configs/sweeps/demo.yaml` through the code `evalkit sweep` uses: the trained model,
the same model with every image blanked (`blank_images`), and the untrained one. Only a model that receives
the right pixels can answer the bundled colour questions, so the first row scores >= 90 and the other two
stay at chance. Everything is the real path: checkpoints saved and loaded with `AutoProcessor` /
`AutoModelForImageTextToText`, samples read from the authors' layouts, results as records, then the tables
and the HTML report.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from evalkit.demo.samples import DATA
from evalkit.errors import ConfigError, InputError

T = TypeVar("T")
SWEEP = Path(__file__).resolve().parents[2] / "configs" / "sweeps" / "demo.yaml"
TRAIN_STEPS = 300
# folder -> training steps; both from seed 0, so the untrained one is where the trained one started
CHECKPOINTS = {"tiny-llava": TRAIN_STEPS, "tiny-llava-untrained": 0}
CHANCE = (
    "questions answered right (chance is 50%: every MME image and every POPE split is asked as many yes- as "
    "no-questions; a reply that is not yes or no is wrong):"
)


def build_checkpoints(output: Path, console: Console) -> dict[str, Path]:
    """The demo's checkpoints under `output` (built once; a build is written aside and moved into place, so
    an interrupted one is never taken for a finished one)."""
    from transformers.utils import logging as hf_logging

    from evalkit.demo.tiny_model import build_tiny_llava

    folders = {}
    for name, steps in CHECKPOINTS.items():
        folder = folders[name] = output / name
        if (folder / "config.json").exists():
            continue
        hf_logging.disable_progress_bar()
        trained = f"trained {steps} steps on synthetic colours" if steps else "untrained: random weights"
        console.print(f"building a tiny LLaVA-1.5-shaped model in {folder} ({trained})...")
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        build_tiny_llava(partial, seed=0, train_steps=steps)
        partial.rename(folder)
    return folders


def run_demo(output: Path, console: Console, progress: Callable[[Any], Any] | None = None) -> Path:
    """Build the checkpoints, run the demo sweep, print its table, write the tables and the report under
    `output`; returns the results folder."""
    from evalkit.reports.table import render
    from evalkit.sweep import check_protocols, load_sweep, run_sweep, write_tables

    if not SWEEP.is_file():
        raise InputError(
            f"{SWEEP}: the demo's sweep file is missing (the demo runs from an evalkit checkout)"
        )
    output = output.resolve()
    build_checkpoints(output, console)
    plan = load_sweep(SWEEP, {**os.environ, "EVALKIT_DEMO": str(output), "EVALKIT_DEMO_DATA": str(DATA)})
    check_protocols(plan)
    results = _one_thread(lambda: run_sweep(plan, plan.data_root or DATA, progress=progress))
    if failed := [r for r in results if r.error is not None]:
        raise ConfigError(f"demo: {failed[0].name} failed: {failed[0].error}")
    tables = write_tables(plan)
    console.print(render(plan.output, "wide", "md"), markup=False)
    console.print(CHANCE, markup=False)
    for line in answered_right(plan.output):
        console.print(f"  {line}", markup=False)
    console.print(f"tables: {tables}  records: {plan.output}", markup=False)
    console.print(f"report: {_write_report(plan.output, output / 'report.html')}", markup=False)
    return plan.output


def _one_thread(work: Callable[[], T]) -> T:
    """`work` with torch on one intra-op thread: the tiny model's matrices gain nothing from a second one,
    and on a busy 2-core machine the threads' waiting on each other made generation several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return work()
    finally:
        torch.set_num_threads(threads)


def answered_right(results: Path) -> list[str]:
    """Per model folder, each task's questions answered right (the measure whose chance level is plain)."""
    from evalkit.records import PREDICTIONS, iter_run_records, read_predictions

    rows: dict[str, list[str]] = {}
    for path, record in iter_run_records(results):
        records = read_predictions(path.parent / PREDICTIONS)
        right = sum(r.score >= 1 for r in records)
        cell = f"{record.task} {right}/{record.n} ({100 * right / record.n:.0f}%"
        unread = int(record.metrics.get("unparsed", 0))
        cell += f", {unread} replies not yes/no)" if unread else ")"
        rows.setdefault(path.parent.parent.name, []).append(cell)
    width = max(map(len, rows), default=0)
    return [f"{name:<{width}}  " + "  ".join(cells) for name, cells in rows.items()]


def _write_report(results: Path, out: Path) -> Path:
    """The HTML report of the demo's results, thumbnails from the bundled samples."""
    from evalkit.reports.html import write_report

    return write_report(results, out, data_root=DATA)
