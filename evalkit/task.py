"""What a task module declares: how to read the benchmark, its answer kind, and per protocol only what is
benchmark-specific (prompt builder, scorer, generation limit, image mode); the rest comes from the
protocol's defaults for that answer kind. Adding a protocol adds variants; nothing in the runner or the
backends changes, and a task never needs a variant for a protocol that never ran it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from evalkit.data.readers import Dataset, Sample
from evalkit.errors import ConfigError
from evalkit.protocols import AnswerKind, ImageMode, get_protocol
from evalkit.records import PENDING_JUDGE, Prediction, State
from evalkit.scoring.bootstrap import Unit
from evalkit.scoring.judge import JudgeRequest
from evalkit.scoring.outcomes import standard_counts
from evalkit.scoring.ratios import twin
from evalkit.scoring.types import Scored


@dataclass(frozen=True)
class Judged:
    """How a judged task is scored: the grader conversation for one record, reading a grade from the
    grader's reply (None when unreadable: retried at rising temperature, `tries` in all), and the grade as
    the record's score. A grade is JSON-serialisable (a number or a list of numbers) and is kept in the
    record's `meta["grade"]` for the aggregation. `on_failure`: "zero" scores a never-parsed reply 0,
    "exclude" leaves it out of the aggregate; both count it in `judge_failures`."""

    request: Callable[[Prediction], JudgeRequest]
    parse: Callable[[str], object | None]
    score: Callable[[object], float]
    tries: int = 5
    on_failure: Literal["zero", "exclude"] = "zero"


def pending_judge(output: str, sample: Sample) -> Scored:
    """The generation-time scorer of a judged task: the grade comes later, from the judge."""
    return Scored(None, 0.0, PENDING_JUDGE)


@dataclass(frozen=True)
class Variant:
    """A task under one protocol: the exact prompt, the scorer and the generation settings. A field left
    None takes the protocol's default for the task's answer kind (`Task.variant` fills them in)."""

    prompt: Callable[[Sample], str] | None = None
    score: Callable[[str, Sample], Scored] | None = None
    max_new_tokens: int | None = None
    image_mode: ImageMode | None = None
    primary: str | None = None  # the headline metric under this protocol, when it differs from the task's
    aggregate: Callable[[list[Prediction]], dict[str, float]] | None = None  # likewise, the aggregation
    departures: tuple[str, ...] = ()  # where this differs from the protocol's reference pipeline, and why
    image_limit: int | None = None  # at most this many of a sample's images reach the model (the first ones)
    unit: Unit | None = None  # likewise, the independent unit (it must hold every group the aggregate forms)


@dataclass(frozen=True)
class Task:
    """A benchmark split. `load(folder)` reads it from `<data-root>/<folder>`; `aggregate` turns
    prediction records into flat percent metrics (it must count `unparsed` and `failed`)."""

    name: str
    version: int
    folder: str
    description: str
    load: Callable[[Path], Dataset]
    variants: Mapping[str, Variant]
    aggregate: Callable[[list[Prediction]], dict[str, float]]
    primary: str
    kind: AnswerKind = "free"  # what an answer is: yes/no, an option letter, a short answer, open, free text
    exports: tuple[str, ...] = field(default_factory=tuple)
    # maps a question id from another tool's answer file (LLaVA's) to this task's sample id
    external_id: Callable[[str], str] | None = None
    judged: Judged | None = None  # set for tasks graded by an LLM judge (`--judge`)
    # what the records are independent in, for confidence intervals (default: each question)
    unit: Unit = field(default_factory=Unit)

    @property
    def protocols(self) -> tuple[str, ...]:
        """The protocols this task runs under."""
        return tuple(self.variants)

    def variant(self, protocol: str) -> Variant:
        """The task under `protocol`, every field set: the task's own, else the protocol's default for the
        task's answer kind; a field neither gives is an error naming both."""
        try:
            own = self.variants[protocol]
        except KeyError:
            known = ", ".join(sorted(self.variants))
            raise ConfigError(
                f"task {self.name!r} has no variant for protocol {protocol!r} (has: {known})"
            ) from None
        p = get_protocol(protocol)
        resolved = replace(
            own,
            prompt=own.prompt or p.prompts.get(self.kind),
            score=own.score or p.scorers.get(self.kind),
            max_new_tokens=own.max_new_tokens or p.max_new_tokens.get(self.kind),
            image_mode=own.image_mode or p.image_mode,
        )
        if missing := [f for f in ("prompt", "score", "max_new_tokens") if getattr(resolved, f) is None]:
            raise ConfigError(
                f"task {self.name!r} under protocol {protocol!r}: no {', '.join(missing)}, and the protocol "
                f"has no default for {self.kind} answers"
            )
        return resolved

    def benchmark_for(self, protocol: str) -> Callable[[list[Prediction]], dict[str, float]]:
        """The benchmark's own metrics under `protocol`, without the standard counts; a judged task's over
        the records it counts (not pending; not failed grades where `Judged.on_failure` excludes them)."""
        own = self.variants[protocol].aggregate if protocol in self.variants else None
        benchmark = own or self.aggregate
        judged = self.judged
        if judged is None:
            return benchmark

        def counted(p: Prediction) -> bool:  # what a judged task's metrics are over (Judged.on_failure)
            state = p.state
            return state != State.PENDING and not (
                judged.on_failure == "exclude" and state == State.JUDGE_FAILURE
            )

        return lambda predictions: benchmark([p for p in predictions if counted(p)])

    def aggregate_for(self, protocol: str) -> Callable[[list[Prediction]], dict[str, float]]:
        """The metrics of records under `protocol`: the benchmark's own, then the standard counts (one rule
        for every task: `unparsed`, `failed`, and for judged tasks `judge_failures` and `pending`)."""
        benchmark = self.benchmark_for(protocol)
        judged = self.judged is not None

        def metrics(predictions: list[Prediction]) -> dict[str, float]:
            return benchmark(predictions) | standard_counts(predictions, judged)

        return metrics

    def unit_for(self, protocol: str) -> Unit:
        """The independent unit under `protocol`, with the aggregate's vectorised twin where there is one
        (the unit's own, or the library's for `grouped_accuracy`). A judged task's metrics leave records
        out (pending grades), which no twin does: it is re-aggregated."""
        own = self.variants[protocol].unit if protocol in self.variants else None
        unit = own or self.unit
        if self.judged is not None:
            return replace(unit, vectorised=None)
        if unit.vectorised is None and (found := twin(self.benchmark_for(protocol))) is not None:
            return replace(unit, vectorised=found)
        return unit

    def primary_for(self, protocol: str) -> str:
        return self.variant(protocol).primary or self.primary

    def sample_meta(self, sample: Sample) -> dict[str, object]:
        """What a prediction record keeps of its sample: the target and the benchmark's metadata."""
        return {"target": sample.target, "question": sample.question, **sample.meta}
