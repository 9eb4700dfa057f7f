"""What a task module declares: how to read the benchmark, and per protocol how to prompt and score.

A `Task` is data: a reader, one `Variant` per protocol (prompt builder, scorer, generation limit,
image mode) and an aggregation over prediction records. Adding a protocol adds variants; nothing in
the runner or the backends changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from evalkit.data.readers import Dataset, Sample
from evalkit.errors import ConfigError
from evalkit.records import Prediction
from evalkit.scoring.judge import JudgeRequest
from evalkit.scoring.types import Scored

ImageMode = Literal["pad", "crop", "native"]
PENDING_JUDGE = "pending_judge"  # the parse rule of a record whose grade the judge has not given yet
JUDGE_FAILURE = "judge_failure"  # the judge's replies never parsed: counted in `judge_failures`


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
    """A task under one protocol: the exact prompt, the scorer and the generation settings."""

    prompt: Callable[[Sample], str]
    score: Callable[[str, Sample], Scored]
    max_new_tokens: int
    image_mode: ImageMode = "native"
    primary: str | None = None  # the headline metric under this protocol, when it differs from the task's
    aggregate: Callable[[list[Prediction]], dict[str, float]] | None = None  # likewise, the aggregation
    departures: tuple[str, ...] = ()  # where this differs from the protocol's reference pipeline, and why


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
    exports: tuple[str, ...] = field(default_factory=tuple)
    # maps a question id from another tool's answer file (LLaVA's) to this task's sample id
    external_id: Callable[[str], str] | None = None
    judged: Judged | None = None  # set for tasks graded by an LLM judge (`--judge`)

    def variant(self, protocol: str) -> Variant:
        try:
            return self.variants[protocol]
        except KeyError:
            known = ", ".join(sorted(self.variants))
            raise ConfigError(
                f"task {self.name!r} has no variant for protocol {protocol!r} (has: {known})"
            ) from None

    def aggregate_for(self, protocol: str) -> Callable[[list[Prediction]], dict[str, float]]:
        return self.variant(protocol).aggregate or self.aggregate

    def primary_for(self, protocol: str) -> str:
        return self.variant(protocol).primary or self.primary

    def sample_meta(self, sample: Sample) -> dict[str, object]:
        """What a prediction record keeps of its sample: the target and the benchmark's metadata."""
        return {"target": sample.target, "question": sample.question, **sample.meta}
