"""Generation plumbing: batches, images decoded and the next batch prepared in worker threads while the
current batch generates (the accelerator does not wait on PIL or tokenising), and a lazily built backend.

Batch backends get batches fixed over the whole task (sorted by prompt length), so a batch has the same
members whether the run was interrupted or not; a batch holding any pending sample is generated whole and
only its pending samples are recorded. Concurrent backends (remote endpoints) get only pending samples and
keep `backend.window` requests in flight, results written as they complete.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from PIL import Image

from evalkit.backends.base import Backend, Failure, Request
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


@dataclass
class _Prepared:
    samples: list[Sample]
    prompts: dict[str, str]
    failures: dict[str, Failure]
    requests: list[Request]
    backend_input: Any


class Pipeline:
    """Runs batches through a (lazy) backend, preparing batch i+1 while batch i generates."""

    def __init__(
        self,
        backend: LazyBackend,
        variant: Variant,
        template: str | None,
        pending: set[str],
        tokenization: str = "processor",
    ) -> None:
        self.backend = backend
        self.tokenization = tokenization
        self.variant = variant
        self.template = template
        self.pending = pending
        self._images = ThreadPoolExecutor(max_workers=4, thread_name_prefix="evalkit-images")
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-prepare")

    def _prepare(self, samples: list[Sample]) -> _Prepared:
        prompts = {s.id: self.variant.prompt(s) for s in samples}
        decoded = dict(zip((s.id for s in samples), self._images.map(decode, samples), strict=True))
        failures = {i: d for i, d in decoded.items() if isinstance(d, Failure)}
        if all(s.id in failures for s in samples if s.id in self.pending):
            return _Prepared(samples, prompts, failures, [], None)  # nothing to generate: no model needed
        engine = self.backend.get()
        mode, pad = engine.image_mode(self.variant.image_mode), engine.pad_colour
        requests = []
        for s in samples:
            images = decoded[s.id]
            if not isinstance(images, Failure):
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
        return _Prepared(samples, prompts, failures, requests, engine.prepare(requests))

    def run(self, batches: list[list[Sample]]) -> Iterator[list[Item]]:
        """Groups of pending items as they are ready: whole batches for batch backends, requests as they
        complete for concurrent ones."""
        try:
            if self.backend.batched:
                yield from self._run_batched(batches)
            else:
                yield from self._run_concurrent(batches)
        except BaseException:  # an error or Ctrl-C: leave a model still loading behind, do not wait for it
            self._ahead.shutdown(wait=False, cancel_futures=True)
            self._images.shutdown(wait=False, cancel_futures=True)
            raise
        self._ahead.shutdown(wait=True, cancel_futures=True)
        self._images.shutdown(wait=True, cancel_futures=True)

    def _prepared(self, batches: list[list[Sample]]) -> Iterator[_Prepared]:
        """Prepared batches, the next one always being prepared in the background."""
        future: Future[_Prepared] | None = self._ahead.submit(self._prepare, batches[0]) if batches else None
        for i in range(len(batches)):
            assert future is not None
            batch = future.result()
            future = self._ahead.submit(self._prepare, batches[i + 1]) if i + 1 < len(batches) else None
            yield batch

    def _run_batched(self, batches: list[list[Sample]]) -> Iterator[list[Item]]:
        for batch in self._prepared(batches):
            outputs = self.backend.get().generate(batch.backend_input) if batch.requests else []
            if len(outputs) != len(batch.requests):
                raise RuntimeError(
                    f"backend returned {len(outputs)} outputs for {len(batch.requests)} requests"
                )
            outcomes: dict[str, Outcome] = dict(batch.failures)
            outcomes.update((r.id, o) for r, o in zip(batch.requests, outputs, strict=True))
            yield [(s, batch.prompts[s.id], outcomes[s.id]) for s in batch.samples if s.id in self.pending]

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
                    (f, (by_id[r.id], r.prompt)) for f, r in zip(futures, batch.requests, strict=True)
                )
                while len(in_flight) >= engine.window:
                    yield self._completed(in_flight)
        while in_flight:
            yield self._completed(in_flight)

    @staticmethod
    def _completed(in_flight: dict[Future[Outcome], tuple[Sample, str]]) -> list[Item]:
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        return [(*in_flight.pop(f), f.result()) for f in done]
