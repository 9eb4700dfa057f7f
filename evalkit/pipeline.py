"""Generation plumbing: batches, images decoded and the next batches prepared while the current batch
generates (the accelerator does not wait on PIL or tokenising), and a lazily built backend. The hf backend's
preparation runs in a forked worker process (`torch.utils.data.DataLoader`), so it shares no GIL with the
Python-heavy decoding loop; other backends prepare in a thread. A model generating on a CPU whose every core
torch's threads already use gets its batches prepared in turn: there is no idle core to overlap on.

Batch backends get batches fixed over the whole task (sorted by prompt length), so a batch has the same
members whether the run was interrupted or not; a batch holding any pending sample is generated whole and
only its pending samples are recorded. Concurrent backends (remote endpoints) get only pending samples and
keep `backend.window` requests in flight, results written as they complete.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, NamedTuple

from PIL import Image

from evalkit.backends.base import Backend, Failure, Request
from evalkit.data.blank import blank_like
from evalkit.data.images import ImageError, expand_to_square, load_image
from evalkit.data.readers import Sample
from evalkit.task import Variant

Outcome = str | Failure
Item = tuple[Sample, str, Outcome]  # sample, prompt, output text or failure


class LazyBackend:
    """Builds the backend on first use, so tasks with nothing to generate never load a model."""

    def __init__(self, factory: Callable[[], Backend], batch_size: int, batched: bool = True) -> None:
        self._factory = factory
        self._backend: Backend | None = None
        self._lock = threading.Lock()
        self.batch_size = batch_size
        self.batched = batched  # batch backends (hf) versus concurrent request backends (openai)

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def get(self) -> Backend:
        with self._lock:
            if self._backend is None:
                self._backend = self._factory()
            return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def make_batches(samples: list[Sample], variant: Variant, size: int) -> list[list[Sample]]:
    """Batches of similar prompt length (little padding); a stable sort, so the order is deterministic."""
    ordered = sorted(samples, key=lambda s: (len(s.images), len(variant.prompt(s)), s.group))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def decode(sample: Sample) -> list[Image.Image] | Failure:
    """The sample's images decoded, or why they cannot be read."""
    try:
        if sample.error:
            raise ImageError(sample.error)
        return [load_image(ref) for ref in sample.images]
    except ImageError as exc:
        return Failure(str(exc))


class _Prepared(NamedTuple):
    """A batch ready to generate. A tuple of plain values, so that it crosses from a preparing process
    and its tensors are pinned on the way (`torch.utils.data`'s pin_memory recurses into tuples)."""

    prompts: dict[str, str]
    failures: dict[str, Failure]
    requests: list[str]  # the ids of the requests in `backend_input`, in order
    backend_input: Any


class _Raised(NamedTuple):
    """An error met while preparing in a worker process, raised as itself in the runner (not wrapped in the
    data loader's multi-line report); one that cannot cross processes as itself comes as a RuntimeError
    naming its type, message and the worker's traceback."""

    error: BaseException

    @classmethod
    def of(cls, exc: Exception) -> _Raised:
        try:
            pickle.loads(pickle.dumps(exc))  # it must arrive as itself, or the runner would wait forever
            return cls(exc)
        except Exception:  # unpicklable state, or an __init__ its args do not fit
            where = "".join(traceback.format_exception(exc)).rstrip()
            return cls(RuntimeError(f"{type(exc).__qualname__}: {exc} (while preparing a batch)\n{where}"))


class _Array(NamedTuple):
    """A tensor crossing from the worker as a numpy array: through the pipe, not shared memory (which
    containers often keep small), made a tensor again in the runner without a copy."""

    array: Any


def _arrays(value: Any, to_numpy: bool) -> Any:
    """Tensors inside tuples, lists and dicts to `_Array`s (`to_numpy`) or back."""
    if to_numpy and type(value).__name__ == "Tensor" and str(value.dtype) != "torch.bfloat16":
        return _Array(value.numpy())
    if not to_numpy and isinstance(value, _Array):
        import torch

        return torch.from_numpy(value.array)
    if isinstance(value, dict):
        return {k: _arrays(v, to_numpy) for k, v in value.items()}
    if isinstance(value, tuple | list) and not hasattr(value, "_fields"):
        return type(value)(_arrays(v, to_numpy) for v in value)
    return value


def _worker_init(worker_id: int) -> None:
    """The fast tokenizer's thread pool, used by the runner before the fork, would deadlock in the worker.
    (The data loader has already given the worker one torch thread: an OpenMP pool the parent used would
    hang a forked child's parallel op, so it must stay at one.)"""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def spare_cores() -> int:
    """The cores this process may use beyond those torch's threads take, in it and in the other processes
    torchrun started on this machine (each with as many threads)."""
    import torch

    return usable_cores() - torch.get_num_threads() * int(os.environ.get("LOCAL_WORLD_SIZE") or 1)


class _Batches:
    """The batches as a map-style dataset for `torch.utils.data.DataLoader`: item i is batch i prepared."""

    def __init__(self, pipeline: Pipeline, batches: list[list[Sample]]) -> None:
        self.pipeline = pipeline
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> _Prepared | _Raised:
        try:
            prepared = self.pipeline._prepare(self.batches[i])
            return prepared._replace(backend_input=_arrays(prepared.backend_input, to_numpy=True))
        except Exception as exc:  # re-raised in the runner's process
            return _Raised.of(exc)


class Pipeline:
    """Runs batches through a (lazy) backend, preparing batch i+1 while batch i generates."""

    def __init__(
        self,
        backend: LazyBackend,
        variant: Variant,
        template: str | None,
        pending: set[str],
        tokenization: str = "processor",
        blank_images: bool = False,
    ) -> None:
        self.backend = backend
        self.tokenization = tokenization
        self.blank_images = blank_images  # the ablation (`evalkit.data.blank`): every image mid-grey
        self.variant = variant
        self.template = template
        self.pending = pending
        self._pools: dict[int, ThreadPoolExecutor] = {}  # image decoding threads, per process
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-prepare")

    def _images(self) -> ThreadPoolExecutor:
        """This process's decoding threads: a forked preparing process must not use the parent's pool, whose
        threads it does not have."""
        pid = os.getpid()
        if pid not in self._pools:
            self._pools[pid] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="evalkit-images")
        return self._pools[pid]

    def _prepare(self, samples: list[Sample]) -> _Prepared:
        prompts = {s.id: self.variant.prompt(s) for s in samples}
        decoded = dict(zip((s.id for s in samples), self._images().map(decode, samples), strict=True))
        failures = {i: d for i, d in decoded.items() if isinstance(d, Failure)}
        if all(s.id in failures for s in samples if s.id in self.pending):
            return _Prepared(prompts, failures, [], None)  # nothing to generate: no model needed
        engine = self.backend.get()
        mode, pad = engine.image_mode(self.variant.image_mode), engine.pad_colour
        requests = []
        for s in samples:
            images = decoded[s.id]
            if not isinstance(images, Failure):
                images = [blank_like(img) for img in images] if self.blank_images else images
                images = images[: self.variant.image_limit] if self.variant.image_limit else images
                images = [expand_to_square(img, pad) for img in images] if mode == "pad" else images
                requests.append(
                    Request(
                        s.id,
                        images,
                        prompts[s.id],
                        self.variant.max_new_tokens,
                        self.template,
                        self.tokenization,
                    )
                )
        return _Prepared(prompts, failures, [r.id for r in requests], engine.prepare(requests))

    def run(self, batches: list[list[Sample]]) -> Iterator[list[Item]]:
        """Groups of pending items as they are ready: whole batches for batch backends, requests as they
        complete for concurrent ones."""
        try:
            if self.backend.batched:
                yield from self._run_batched(batches)
            else:
                yield from self._run_concurrent(batches)
        except BaseException:  # an error or Ctrl-C: leave a model still loading behind, do not wait for it
            self._shutdown(wait=False)
            raise
        self._shutdown(wait=True)

    def _shutdown(self, wait: bool) -> None:
        self._ahead.shutdown(wait=wait, cancel_futures=True)
        for pool in self._pools.values():
            pool.shutdown(wait=wait, cancel_futures=True)

    def _prepared(self, batches: list[list[Sample]]) -> Iterator[_Prepared]:
        """Prepared batches. The first is prepared in a thread (it loads the model); then, by `_ahead_mode`,
        the next batch is always being prepared in a worker process or a thread while one generates, or
        each is prepared in turn."""
        future: Future[_Prepared] | None = self._ahead.submit(self._prepare, batches[0]) if batches else None
        for i in range(len(batches)):
            assert future is not None
            batch = future.result()
            rest = batches[i + 1 :]
            mode = self._ahead_mode() if rest else "thread"
            if mode == "process":
                ahead = self._prepared_in_process(rest)  # the worker starts on batch i+1 now
                yield batch
                yield from ahead
                return
            if mode == "in turn":
                yield batch
                yield from (self._prepare(b) for b in rest)
                return
            future = self._ahead.submit(self._prepare, rest[0]) if rest else None
            yield batch

    def _ahead_mode(self) -> str:
        """How batches after the first are prepared:
        - "in turn", where the model generates on the CPU and torch's threads take every core: preparing
          alongside could only take cores from generation (measured slower than in turn, by `bench/
          runner_overhead.py`);
        - "process", a forked worker (no GIL shared with generation) for a batch backend, once loaded (the
          worker inherits the model, never loads its own), that allows it (hf), on Linux (fork is unsafe on
          macOS), unless turned off ($EVALKIT_PREPARE_PROCESSES=0);
        - "thread" otherwise."""
        if not (self.backend.batched and self.backend.loaded):
            return "thread"
        engine = self.backend.get()
        if engine.generates_on_cpu and spare_cores() < 1:
            return "in turn"
        allowed = (
            os.environ.get("EVALKIT_PREPARE_PROCESSES", "1") != "0"
            and sys.platform == "linux"
            and bool(getattr(engine, "prepare_in_process", False))
        )
        return "process" if allowed else "thread"

    def _prepared_in_process(self, batches: list[list[Sample]]) -> Iterator[_Prepared]:
        """`torch.utils.data.DataLoader` over the batches, started at once: one forked worker prepares ahead
        (two batches in flight); tensors come back through the pipe."""
        from torch.utils.data import DataLoader

        loader = DataLoader(
            _Batches(self, batches),  # type: ignore[arg-type]
            batch_size=None,
            collate_fn=lambda item: item,  # as prepared: no conversion on the way
            num_workers=1,
            prefetch_factor=2,
            multiprocessing_context="fork",
            worker_init_fn=_worker_init,
        )
        items = iter(loader)  # forks and starts preparing

        def arrived() -> Iterator[_Prepared]:
            for item in items:
                if isinstance(item, _Raised):
                    raise item.error
                yield item._replace(backend_input=_arrays(item.backend_input, to_numpy=False))

        return arrived()

    def _run_batched(self, batches: list[list[Sample]]) -> Iterator[list[Item]]:
        for samples, batch in zip(batches, self._prepared(batches), strict=True):
            outputs = self.backend.get().generate(batch.backend_input) if batch.requests else []
            if len(outputs) != len(batch.requests):
                raise RuntimeError(
                    f"backend returned {len(outputs)} outputs for {len(batch.requests)} requests"
                )
            outcomes: dict[str, Outcome] = dict(batch.failures)
            outcomes.update(zip(batch.requests, outputs, strict=True))
            yield [(s, batch.prompts[s.id], outcomes[s.id]) for s in samples if s.id in self.pending]

    def _run_concurrent(self, batches: list[list[Sample]]) -> Iterator[list[Item]]:
        by_id = {s.id: s for batch in batches for s in batch}
        in_flight: dict[Future[Outcome], tuple[Sample, str]] = {}
        for batch in self._prepared(batches):
            if failed := [(by_id[i], batch.prompts[i], f) for i, f in batch.failures.items()]:
                yield failed
            if batch.requests:
                engine = self.backend.get()
                futures = engine.submit(batch.backend_input)
                in_flight.update(
                    (f, (by_id[i], batch.prompts[i])) for f, i in zip(futures, batch.requests, strict=True)
                )
                while len(in_flight) >= engine.window:
                    yield self._completed(in_flight)
        while in_flight:
            yield self._completed(in_flight)

    @staticmethod
    def _completed(in_flight: dict[Future[Outcome], tuple[Sample, str]]) -> list[Item]:
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        return [(*in_flight.pop(f), f.result()) for f in done]
