"""One `evalkit run`: a model over tasks under a protocol, checked before anything loads, then run task by
task (`runner`). The command line and sweeps call `evaluate`; it prints nothing.

Order of the checks, cheapest first and none of them touching the results folder: the model spec, the
protocol and its variant for every task, the dtype, every task's data, the judge (and its endpoint). Then
every task folder is locked, and only a task with work loads the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.backends import BackendOptions
from evalkit.data.blank import blank_name
from evalkit.datacheck import load_all
from evalkit.distributed import World, init_world
from evalkit.errors import ConfigError
from evalkit.judging import require_judge
from evalkit.models import backend_factory, check_dtype, locate, resolve_model, with_overrides
from evalkit.pipeline import LazyBackend
from evalkit.protocols import get_protocol
from evalkit.records import RunRecord
from evalkit.registry import parse_task_list
from evalkit.runner import Progress, RunSettings, lock_tasks, run_task
from evalkit.scoring.judge import Judge


@dataclass(frozen=True)
class RunRequest:
    """What `evalkit run` (or one model of a sweep) asks for."""

    model: str
    tasks: str | list[str]
    data_root: Path
    output: Path
    protocol: str | None = None  # default: the model config's, else llava
    name: str | None = None  # default: the config name or a slug of the model
    limit: int | None = None
    strip_reasoning: bool | None = None
    backend: BackendOptions = field(default_factory=BackendOptions)
    # model settings given on the command line, over the model config's (None: not given)
    model_options: dict[str, Any] = field(default_factory=dict)
    judge: Judge | None = None
    matcher: bool = False
    blank_images: bool = False  # the ablation (`evalkit.data.blank`); the default name gets "+blank"


@dataclass(frozen=True)
class Outcome:
    settings: RunSettings
    records: list[RunRecord]
    world: World


@contextmanager
def evaluate(
    request: RunRequest, progress: Callable[[World], Progress | None] | None = None
) -> Iterator[Outcome]:
    """Run every task of the request (resuming what is there) and yield the run records; the backend and the
    process group are released when the block ends."""
    spec = locate(with_overrides(resolve_model(request.model), **request.model_options))
    protocol = get_protocol(request.protocol or spec.options.get("protocol") or "llava")
    protocol = protocol.with_reasoning(request.strip_reasoning)
    tasks = parse_task_list(request.tasks)
    options = request.backend
    check_dtype(options.dtype or spec.options.get("dtype"))
    for task in tasks:
        task.variant(protocol.name)
    datasets = load_all(tasks, request.data_root)  # every task's data, before any judge or model is asked
    require_judge(tasks, request.judge)
    if request.matcher and request.judge is None:
        raise ConfigError("--judge-matcher needs a judge: give --judge MODEL")
    if request.judge is not None and (request.matcher or any(t.judged for t in tasks)):
        request.judge.preflight()
    backend = LazyBackend(
        backend_factory(spec, options),
        batch_size=spec.batch_size(options.batch_size, options.concurrency),
        batched=spec.batched,
    )
    use_protocol_template, template = spec.template(protocol.template, protocol.own_template)
    settings = RunSettings(
        name=request.name or blank_name(spec.name, request.blank_images),
        model=request.model,
        protocol=protocol,
        data_root=request.data_root,
        output=request.output,
        limit=request.limit,
        template=template,
        use_protocol_template=use_protocol_template,
        image_mode=spec.image_mode(protocol.name),
        model_settings=spec.settings(options.dtype),
        judge=request.judge,
        matcher=request.matcher,
        blank_images=request.blank_images,
    )
    world = init_world()
    try:
        with lock_tasks(tasks, settings, world):  # every task folder, before any model loads
            report = progress(world) if progress else None
            records = [run_task(t, settings, backend, report, world, datasets.pop(t.name)) for t in tasks]
        yield Outcome(settings, records, world)
    finally:
        backend.close()
        world.close()
