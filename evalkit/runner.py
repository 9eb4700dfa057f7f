"""The greedy runner: samples -> batches -> backend.generate -> scored records, resumable; then the stages
`evalkit score` shares (`stages`: score -> judge -> aggregate -> metrics.json).

Per task: read the samples, keep the records already made (failed ones are retried), run the rest in
batches (`pipeline`), append each batch's records, then score every record again and aggregate them.
A task whose records are complete never touches the backend, so the model loads only when some task
has work. Under torchrun each rank runs its shard of the pending samples (`distributed`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from evalkit import stages
from evalkit.backends import BACKENDS
from evalkit.data.blank import SETTING
from evalkit.data.readers import Dataset, Sample
from evalkit.distributed import SINGLE, World
from evalkit.errors import ConfigError, InputError
from evalkit.judging import pending as pending_grades
from evalkit.judging import unmatched
from evalkit.pipeline import LazyBackend, Pipeline, make_batches
from evalkit.protocols import Protocol
from evalkit.records import DataInfo, Manifest, Prediction, RunRecord, clean_text
from evalkit.scoring.group import group_by
from evalkit.scoring.judge import Judge
from evalkit.stages import make_prediction
from evalkit.store import TaskStore
from evalkit.task import Task, Variant

Progress = Callable[[str, int, int], None]  # (task, done, total)


@dataclass(frozen=True)
class RunSettings:
    name: str  # results folder name
    model: str  # what the user asked for (config name, path, openai:<id>)
    protocol: Protocol
    data_root: Path
    output: Path
    limit: int | None = None
    # conversation template: the protocol's unless a model config names another ("native": the model's own)
    template: str | None = None
    use_protocol_template: bool = True
    image_mode: str | None = None  # the model config's image mode for this protocol, over every task's
    # what identifies the model beyond its name (backend, checkpoint, dtype, revision); pinned on resume
    model_settings: dict[str, object] = field(default_factory=dict)
    judge: Judge | None = None  # the LLM judge for judged tasks (MM-Vet, LLaVA-Bench)
    matcher: bool = False  # also send replies the rules cannot read to the judge (`--judge-matcher`)
    blank_images: bool = False  # the ablation: every image replaced by a blank one (`evalkit.data.blank`)

    def conversation_template(self) -> str | None:
        return self.protocol.template if self.use_protocol_template else self.template


def select(dataset: Dataset, limit: int | None) -> list[Sample]:
    """The first `limit` samples (all by default); ids must be unique; a benchmark with none is an error."""
    if not dataset.samples:
        raise InputError(f"{dataset.path}: no samples in it (an empty or header-only file?)")
    samples = dataset.samples if limit is None else dataset.samples[:limit]
    seen: set[str] = set()
    for s in samples:
        if clean_text(s.id)[0] != s.id:  # an id no record could hold as it is: resume would never match it
            raise InputError(f"{dataset.path}: sample id {s.id!r} holds text UTF-8 cannot encode")
        if s.id in seen:
            raise ConfigError(f"{dataset.path}: duplicate sample id {s.id!r}")
        seen.add(s.id)
    return samples


def generation_settings(settings: RunSettings, variant: Variant) -> dict[str, object]:
    """Greedy decoding settings and the conversation template actually used, as recorded and pinned."""
    template = settings.conversation_template()
    backend_name = str(settings.model_settings.get("backend", ""))
    if backend_name in BACKENDS and BACKENDS[backend_name].serves_template:  # the server's chat template
        label = f"server chat template + {template} system prompt" if template else "server chat template"
    else:
        label = template or "model chat template"
    blank = {SETTING: True} if settings.blank_images else {}  # recorded only when on: older folders resume
    return {
        "max_new_tokens": variant.max_new_tokens,
        "do_sample": False,
        "num_beams": 1,
        "temperature": 0.0,
        "template": label,
        "image_mode": variant.image_mode,
        "tokenization": settings.protocol.tokenization,
        **blank,
    }


def lock_tasks(tasks: list[Task], settings: RunSettings, world: World = SINGLE) -> contextlib.ExitStack:
    """Every task folder of the run locked before any model loads (in name order, so two runs asking for
    the same tasks in different orders cannot each hold half): a run that would be refused at its third
    task is refused at once. Released when the returned stack closes."""
    stack = contextlib.ExitStack()
    try:
        for task in sorted(tasks, key=lambda t: t.name):
            stack.enter_context(TaskStore(settings.output / settings.name / task.name, world).lock())
    except BaseException:
        stack.close()
        raise
    return stack


def run_task(
    task: Task,
    settings: RunSettings,
    backend: LazyBackend,
    progress: Progress | None = None,
    world: World = SINGLE,
    dataset: Dataset | None = None,
) -> RunRecord:
    """Run (or finish) one task and write its metrics; returns the run record. The task folder is locked
    for the run's whole time: a second run on it is refused."""
    dataset = dataset or task.load(settings.data_root / task.folder)
    store = TaskStore(settings.output / settings.name / task.name, world)
    with store.lock():
        return _run_locked(task, settings, backend, progress, world, dataset, store)


@dataclass
class _Job:
    """One task's run: what it asks for, what is already on disk, what is left."""

    task: Task
    settings: RunSettings
    world: World
    dataset: Dataset
    store: TaskStore
    samples: list[Sample]
    variant: Variant
    manifest: Manifest
    done: dict[str, Prediction] = field(default_factory=dict)

    @property
    def pending(self) -> list[Sample]:
        return [s for s in self.samples if s.id not in self.done]


def _plan(task: Task, settings: RunSettings, world: World, dataset: Dataset, store: TaskStore) -> _Job:
    """Pin the folder's settings (rank 0; a refusal stops every rank) and read what is already made."""
    protocol = settings.protocol
    variant = task.variant(protocol.name)
    if settings.image_mode:
        variant = replace(variant, image_mode=settings.image_mode)  # type: ignore[arg-type]
    samples = select(dataset, settings.limit)
    manifest = Manifest(
        task=task.name, task_version=task.version, protocol=protocol.name, model=settings.model,
        generation=generation_settings(settings, variant), model_settings=settings.model_settings,
        data_fingerprint=dataset.fingerprint, replies=protocol.output_settings(),
    )  # fmt: skip
    by_id = {s.id: s for s in samples}

    def same_prompts() -> bool:  # every record made was asked exactly what the task asks now
        assert variant.prompt is not None
        return all(variant.prompt(by_id[r.id]) == r.prompt for r in store.all_records() if r.id in by_id)

    def check() -> None:
        store.check_manifest(manifest, same_prompts)
        store.guard_limit(len(samples))

    world.on_main(check)
    job = _Job(task, settings, world, dataset, store, samples, variant, manifest)
    job.done = store.resume(set(by_id))
    return job


def _finished(job: _Job) -> bool:
    """Nothing to generate, no grade pending, nothing the matcher has yet to see."""
    done = list(job.done.values())
    to_match = job.settings.matcher and job.task.judged is None and unmatched(done, job.task.kind)
    return not job.pending and not pending_grades(done) and not to_match


def _generate(job: _Job, backend: LazyBackend, progress: Progress | None) -> int:
    """Generate the pending samples (this rank's share) and append their records; how many were made."""
    task, variant, world, total = job.task, job.variant, job.world, len(job.samples)
    pending = job.pending
    if backend.batched:  # batches fixed over the whole task; those holding pending samples are run whole
        batches = make_batches(job.samples, variant, backend.batch_size)
        mine = world.shard([b for b in batches if any(s.id not in job.done for s in b)])
    else:
        groups = list(group_by(pending, lambda s: s.group or s.id).values())  # passes sharing an image
        mine = make_batches([s for g in world.shard(groups) for s in g], variant, backend.batch_size)
    if progress:
        progress(task.name, len(job.done), total)
    if not mine:
        return 0
    template = job.settings.conversation_template()
    pipeline = Pipeline(
        backend, variant, template, {s.id for s in pending}, job.settings.protocol.tokenization,
        job.settings.blank_images,
    )  # fmt: skip
    written = 0
    with job.store.writer() as writer:
        for items in pipeline.run(mine):
            writer.write(make_prediction(task, variant, job.settings.protocol, *item) for item in items)
            written += len(items)
            if progress:  # under data parallelism, rank 0 extrapolates from its own shard
                progress(task.name, min(total, len(job.done) + written * world.size), total)
    return written


def _finish(job: _Job, backend: LazyBackend, started: str, seconds: float) -> RunRecord:
    """Rank 0: the shared stages (score -> judge -> aggregate) over every record, then metrics.json."""
    task, settings, store, protocol = job.task, job.settings, job.store, job.settings.protocol
    if backend.loaded:
        store.remember_backend(backend.get().describe())
    records = store.gather({s.id for s in job.samples})
    made = [records[s.id] for s in job.samples]
    judge_model = settings.judge.model if settings.judge is not None else None
    scored = stages.score(task, protocol, made, judge_model, settings.matcher)
    judged = stages.judge(task, protocol, scored, settings.judge, settings.matcher)
    if judged.records != made:
        store.update(judged.records)
    dataset = job.dataset
    provenance = stages.Provenance(
        model=settings.model,
        model_config=store.backend_info() or {"model": settings.model, **settings.model_settings},
        generation=job.manifest.generation | {"batch_size": backend.batch_size, "world_size": job.world.size},
        data=DataInfo(
            path=str(dataset.path),
            format=dataset.format,
            fingerprint=dataset.fingerprint,
            samples=len(dataset.samples),
        ),
        started=started,
        seconds=seconds,
        generated=len(job.pending),
    )
    metrics = stages.aggregate(task, protocol, judged.records, str(store.predictions))
    record = stages.run_record(task, protocol, judged.records, metrics, provenance, judged.info)
    if len(job.samples) < len(dataset.samples):  # --limit: marked so no table mistakes it for the benchmark
        record = record.model_copy(update={"limit": len(job.samples)})
    store.write_record(record)
    return record


def _run_locked(
    task: Task,
    settings: RunSettings,
    backend: LazyBackend,
    progress: Progress | None,
    world: World,
    dataset: Dataset,
    store: TaskStore,
) -> RunRecord:
    job = _plan(task, settings, world, dataset, store)
    if _finished(job) and (record := store.finished(job.manifest, len(job.samples))):
        return record
    started, clock = stages.now(), time.perf_counter()
    _generate(job, backend, progress)
    seconds = time.perf_counter() - clock
    world.barrier()
    if not world.is_main:
        world.barrier()  # rank 0 merges the shards and writes the metrics
        if (final := store.finished(job.manifest, len(job.samples))) is None:
            raise ConfigError(f"{store.metrics}: rank 0 did not write this task's metrics")
        return final
    record = _finish(job, backend, started, seconds)
    if progress:  # under data parallelism rank 0's count is extrapolated: the end is said when it is known
        progress(task.name, len(job.samples), len(job.samples))
    world.barrier()
    return record
