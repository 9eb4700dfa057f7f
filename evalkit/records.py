"""The record format every downstream tool reads: per-sample predictions and per-task run metrics.

`<output>/<model-name>/<task>/predictions.jsonl` holds one `Prediction` per line, appended as produced;
`metrics.json` holds one `RunRecord`. Tables, exports and re-scoring read only these files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticSerializationError

from evalkit.errors import InputError, OutputError
from evalkit.fs import atomic_write

RECORD_VERSION = 1
PREDICTIONS = "predictions.jsonl"
METRICS = "metrics.json"
MANIFEST = "manifest.json"


class State(StrEnum):
    """Where a record stands. Derived from its fields (`Prediction.state`), so files stay as they are."""

    SCORED = "scored"  # a reply some rule read, scored
    UNPARSED = "unparsed"  # a reply no rule could read: scored wrong, counted
    FAILED = "failed"  # no reply (an unreadable image, a request that failed): wrong, retried next run
    PENDING = "pending_judge"  # waiting for the judge's grade
    JUDGE_FAILURE = "judge_failure"  # the judge's replies never gave a grade: counted


PENDING_JUDGE, JUDGE_FAILURE = State.PENDING.value, State.JUDGE_FAILURE.value  # their `parse` values


class Prediction(BaseModel):
    """One sample's outcome: the prompt sent, the raw output, what was extracted from it and why."""

    model_config = ConfigDict(extra="forbid")

    id: str
    prompt: str
    output: str
    answer: str | None = Field(description="extracted answer; null when nothing could be parsed")
    score: float
    parse: str = Field(description="the rule that fired, e.g. 'exact', 'prefix4', 'unparsed', 'failed'")
    meta: dict[str, Any] = Field(default_factory=dict)
    error: str | None = Field(default=None, description="why the sample failed (image, request); retried")

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def state(self) -> State:
        if self.error is not None:
            return State.FAILED
        if self.parse == PENDING_JUDGE:
            return State.PENDING
        if self.parse == JUDGE_FAILURE:
            return State.JUDGE_FAILURE
        return State.UNPARSED if self.answer is None else State.SCORED

    @property
    def options(self) -> dict[str, str]:
        """The option texts the record was scored against (`meta["options"]`), {} if none."""
        options = self.meta.get("options") or {}
        return options if isinstance(options, dict) else {}


class DataInfo(BaseModel):
    """Where a task's data came from and a fingerprint of its annotation files."""

    path: str
    format: str
    fingerprint: str
    samples: int | None = None  # the task's sample count in this data (None: not recorded)


class RunRecord(BaseModel):
    """`metrics.json`: the aggregate result of one task for one model, with everything to audit it."""

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=())

    task: str
    task_version: int
    protocol: str
    model: str
    model_cfg: dict[str, Any] = Field(alias="model_config")
    generation: dict[str, Any]
    evalkit_version: str
    git_sha: str | None
    data: DataInfo
    n: int
    started: str
    finished: str
    seconds: float
    samples_per_second: float
    metrics: dict[str, float]
    primary: str
    judge: dict[str, Any] | None = None
    # how replies were processed before parsing: {"strip": bool, "reasoning_tags": [[open, close], ...]}
    replies: dict[str, Any] | None = None
    source: str | None = None  # a re-score (`evalkit score`): the file its records were read from
    limit: int | None = None  # a --limit run that took only the first `limit` of the task's samples
    # 95% confidence intervals {metric: [low, high]}, and how they were made: {"method", "unit", "resamples",
    # "seed", "within" (strata)}; empty / None in files written before them and for splits without answers
    ci95: dict[str, list[float]] = Field(default_factory=dict)
    ci: dict[str, Any] | None = None
    record_version: int = RECORD_VERSION

    def dump(self) -> str:
        return json.dumps(self.model_dump(by_alias=True), indent=2, ensure_ascii=False) + "\n"


class Manifest(BaseModel):
    """What a predictions file was produced with; a resumed run must match it."""

    model_config = ConfigDict(protected_namespaces=())

    task: str
    task_version: int
    protocol: str
    model: str
    generation: dict[str, Any]
    model_settings: dict[str, Any] = Field(default_factory=dict)  # backend, checkpoint, dtype, revision
    data_fingerprint: str = ""
    backend_info: dict[str, Any] | None = None  # what the backend reported when it loaded (not compared)
    # how replies are processed before parsing (records are scored as they are written); None: written by
    # evalkit before this was recorded, when llava stripped replies and lmms-eval did not
    replies: dict[str, Any] | None = None
    record_version: int = RECORD_VERSION

    PINNED: ClassVar[tuple[str, ...]] = (
        "task_version",
        "protocol",
        "generation",
        "model",
        "model_settings",
        "data_fingerprint",
        "replies",
    )

    def pinned(self, field: str) -> Any:
        """A pinned setting, with the value older manifests implied where they lack it."""
        value = getattr(self, field)
        if field == "replies" and value is None:
            return {"strip": self.protocol == "llava", "reasoning_tags": []}
        if field == "generation" and "tokenization" not in value:  # before it was recorded: the processor's
            return {**value, "tokenization": "processor"}
        return value


_SURROGATE = re.compile("[\ud800-\udfff]")
REPAIRED = "repaired"  # meta key naming the fields whose lone surrogates were replaced


def clean_text(text: str) -> tuple[str, int]:
    """`text` with lone UTF-16 surrogates (e.g. from a JSON reply holding "\\ud83d") replaced by U+FFFD,
    which UTF-8 files cannot hold otherwise, and how many were replaced (a valid pair is joined)."""
    if not _SURROGATE.search(text):
        return text, 0
    fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return fixed, fixed.count("\ufffd") - text.count("\ufffd")  # a valid pair is joined, not replaced


def _clean_value(value: Any, where: str, found: list[str]) -> Any:
    if isinstance(value, str):
        fixed, n = clean_text(value)
        if n:
            found.append(where)
        return fixed
    if isinstance(value, dict):
        return {k: _clean_value(v, f"{where}.{k}", found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_value(v, f"{where}[{i}]", found) for i, v in enumerate(value)]
    return value


def repaired(prediction: Prediction) -> Prediction:
    """The record with every lone surrogate replaced, the fields named in `meta["repaired"]`."""
    found: list[str] = []
    data = {k: _clean_value(v, k, found) for k, v in prediction.model_dump().items()}
    if found:
        data["meta"][REPAIRED] = sorted({*prediction.meta.get(REPAIRED, []), *found})
    return Prediction.model_validate(data)


def record_line(prediction: Prediction) -> str:
    """One JSON line; a record holding text UTF-8 cannot encode is repaired (and says so), never lost."""
    try:
        return prediction.model_dump_json() + "\n"
    except PydanticSerializationError:
        return repaired(prediction).model_dump_json() + "\n"


def read_predictions(path: Path, *, repair: bool = False) -> list[Prediction]:
    """Read a predictions file. A torn last line (no newline: a writer killed mid-write) is ignored,
    and cut off when `repair` is set; any malformed complete line is an error naming file and line."""
    if not path.exists():
        return []
    out: list[Prediction] = []
    kept, torn = 0, False  # bytes up to the end of the last complete line; a torn last line after it
    with path.open("rb") as f:  # line by line: the file is never held whole
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                torn = bool(line.strip())
                break
            kept += len(line)
            if not line.strip():
                continue
            try:
                out.append(Prediction.model_validate_json(line[:-1]))  # its error positions on this line
            except ValidationError as exc:
                raise InputError(f"{path}:{number}: not a prediction record ({_first_error(exc)})") from exc
    if torn and repair:
        with path.open("r+b") as f:
            f.truncate(kept)
    return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


class PredictionWriter:
    """Appends predictions in groups. Each group is handed to the OS at once (a killed process loses
    nothing written); it is forced to disk at most every `sync_seconds` and on close (power loss)."""

    def __init__(self, path: Path, sync_seconds: float = 2.0) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        self._sync_seconds = sync_seconds
        self._synced = time.monotonic()

    def write(self, predictions: Iterable[Prediction]) -> None:
        data = "".join(record_line(p) for p in predictions)
        if data:
            try:
                self._f.write(data)
                self._f.flush()
                if time.monotonic() - self._synced >= self._sync_seconds:
                    os.fsync(self._f.fileno())
                    self._synced = time.monotonic()
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc

    def close(self) -> None:
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
        finally:
            with contextlib.suppress(OSError):
                self._f.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rewrite_predictions(path: Path, predictions: Iterable[Prediction]) -> None:
    """Replace the file atomically (used to drop failed records before they are retried)."""
    atomic_write(path, "".join(record_line(p) for p in predictions))


def read_run_record(path: Path) -> RunRecord:
    try:
        return RunRecord.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise InputError(
            f"{path}: not an evalkit metrics file ({_first_error(exc)}); it is made from the predictions "
            "beside it: remove it and run the same command again to rebuild it"
        ) from None


def iter_run_records(root: Path) -> Iterator[tuple[Path, RunRecord]]:
    """Every `<model>/<task>/metrics.json` below a results folder, sorted by path; given one model's folder
    (the path `evalkit run` prints), that model's."""
    paths = sorted(root.glob(f"*/*/{METRICS}")) or sorted(root.glob(f"*/{METRICS}"))
    for path in paths:
        yield path, read_run_record(path)
