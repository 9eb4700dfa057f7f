"""`evalkit demo`: build a tiny LLaVA offline, evaluate it on the bundled MME and POPE samples, print tables.

Everything runs through the real path: the checkpoint is saved and loaded with `AutoProcessor` /
`AutoModelForImageTextToText`, the samples are read from the authors' layouts, and results are records.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from evalkit.backends import BackendOptions
from evalkit.demo.samples import DATA
from evalkit.models import backend_factory, resolve_model
from evalkit.pipeline import LazyBackend
from evalkit.protocols import get_protocol
from evalkit.registry import get_task
from evalkit.reports.table import render
from evalkit.runner import RunSettings, run_task

TRAIN_STEPS = 300


def run_demo(output: Path, console: Console) -> Path:
    from evalkit.demo.tiny_model import build_tiny_llava

    checkpoint = output / "tiny-llava"
    if not (checkpoint / "config.json").exists():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        console.print(
            f"building a tiny LLaVA-1.5-shaped model in {checkpoint} (trained on synthetic colours)..."
        )
        build_tiny_llava(checkpoint, seed=0, train_steps=TRAIN_STEPS)
    spec = resolve_model(str(checkpoint))
    backend = LazyBackend(backend_factory(spec, BackendOptions(batch_size=8)), 8)
    settings = RunSettings(
        name="tiny-llava",
        model=str(checkpoint),
        protocol=get_protocol("llava"),
        model_settings=spec.settings(None),
        data_root=DATA,
        output=output / "results",
    )
    try:
        for name in ("mme", "pope"):
            record = run_task(get_task(name), settings, backend)
            console.print(
                f"{name}: n={record.n}  {record.primary}={record.metrics[record.primary]:.2f}  "
                f"unparsed={record.metrics['unparsed']:g}  "
                f"({record.samples_per_second or 0:.1f} samples/s)"
            )
    finally:
        backend.close()
    console.print(render(settings.output, "wide", "md"))
    console.print(
        "(the tiny model was trained on synthetic colour images, so it can answer these colour questions)"
    )
    console.print(
        f"records: {settings.output / settings.name}  (try: evalkit table {settings.output} --layout long)"
    )
    return settings.output
