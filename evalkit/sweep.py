"""`evalkit sweep FILE.yaml`: models x tasks x protocols in one command, checked before any model loads.

The file (a contract, see the README):

    models: [llava-v1.5-7b, /ckpt/mine, openai:served-id,
             {model: NAME, name: ..., base_url: ..., batch_size: 8, dtype: float16, protocol: ...,
              vision_tower: ..., template: ..., revision: ..., blank_images: true,
              tensor_parallel_size: 2}]
    tasks: [pope, mme, sharegpt4v]          # names or groups (or one comma-separated string)
    protocol: llava                         # one, or a list: every model runs under each
    data_root: /data/benchmarks             # default: --data-root, else $EVALKIT_DATA
    output: results
    limit: 100                              # optional: the first N samples of each task
    judge: {model: gpt-4o-2024-08-06, base_url: ..., api_key_env: OPENAI_API_KEY, concurrency: 8,
            matcher: false}
    tables: [wide]                          # layouts written to <output>/tables/ when the sweep ends

Any text value may hold `${NAME}` (the environment variable, an error when unset) or `${NAME:-default}`
(`$${` writes a literal `${`), so one file serves several machines (`configs/sweeps/demo.yaml` finds the
demo's checkpoints so).

Every task's data and the judge are checked first. Then each (model, protocol) runs as `evalkit run` would
(resuming: finished tasks never load the model); a pair that fails is reported at the end while the others
go on, and the command exits non-zero if any failed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evalkit.backends import BackendOptions
from evalkit.data.blank import blank_name
from evalkit.errors import ConfigError, EvalkitError, InputError


class ModelEntry(BaseModel):
    """One model of a sweep, with the `run` options it overrides."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model: str
    name: str | None = None
    protocol: str | None = None  # this model only (default: the sweep's)
    base_url: str | None = None
    concurrency: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    tensor_parallel_size: int | None = Field(default=None, ge=1)  # vllm backend
    dtype: str | None = None
    revision: str | None = None
    vision_tower: str | None = None
    template: str | None = None
    trust_remote_code: bool | None = None
    blank_images: bool = False  # every image mid-grey (`evalkit.data.blank`); the default name gets "+blank"


class JudgeEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(default=8, ge=1)
    matcher: bool = False
    timeout: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0)


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelEntry]
    tasks: list[str]
    protocol: list[str | None] = [None]
    data_root: Path | None = None
    output: Path = Path("results")
    limit: int | None = Field(default=None, ge=1)
    judge: JudgeEntry | None = None
    tables: list[str] = ["wide"]

    def protocols_of(self, entry: ModelEntry) -> list[str | None]:
        """The protocols a model runs under: its own, else the sweep's."""
        return [entry.protocol] if entry.protocol else self.protocol

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise ValueError("a non-empty list of models")
        return [{"model": v} if isinstance(v, str) else v for v in value]

    @field_validator("tasks", "protocol", "tables", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value


_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")  # `$${`: a literal `${`


def expand(value: Any, env: Mapping[str, str], where: Path) -> Any:
    """`value` with `${NAME}` / `${NAME:-default}` in every text replaced from `env`; an unset variable
    without a default is an error naming it."""
    if isinstance(value, dict):
        return {k: expand(v, env, where) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env, where) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if env.get(name):
            return env[name]
        if default is None:
            raise InputError(
                f"{where}: ${{{name}}} is not set (or empty): set it, or write ${{{name}:-default}}"
            )
        return default

    return _VARIABLE.sub(one, value)


def load_sweep(path: Path, env: Mapping[str, str] | None = None) -> SweepFile:
    """The sweep file with `${NAME}` expanded from `env` (default: the environment); relative paths are
    relative to the working directory, as on the command line. One line for anything wrong."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"sweep file not found: {path}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping with models, tasks, protocol, data_root, output")
    raw = expand(raw, os.environ if env is None else env, path)
    try:
        sweep = SweepFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise InputError(f"{path}: {where}: {err.get('msg')}") from None
    return sweep


@dataclass(frozen=True)
class PairResult:
    model: str
    protocol: str
    name: str
    error: str | None = None


def run_sweep(
    sweep: SweepFile,
    data_root: Path,
    judge_factory: Callable[[JudgeEntry], Any] | None = None,
    on_pair: Callable[[str, str], None] | None = None,
    progress: Callable[[Any], Any] | None = None,
) -> list[PairResult]:
    """Run every (model, protocol) pair; return what each did (an error, or None)."""
    from evalkit.datacheck import load_all
    from evalkit.judging import require_judge
    from evalkit.registry import parse_task_list
    from evalkit.session import evaluate

    tasks = parse_task_list(sweep.tasks)
    load_all(tasks, data_root)  # every task's data, before any model or judge
    judge = judge_factory(sweep.judge) if sweep.judge and judge_factory else None
    require_judge(tasks, judge)
    if judge is not None:
        judge.preflight()
    results: list[PairResult] = []
    for entry in sweep.models:
        for protocol in sweep.protocols_of(entry):
            label = protocol or "default"
            if on_pair:
                on_pair(entry.model, label)
            try:
                request = _request(entry, protocol, sweep, data_root, judge)
                with evaluate(request, progress) as done:
                    results.append(PairResult(entry.model, done.settings.protocol.name, done.settings.name))
            except EvalkitError as exc:
                results.append(PairResult(entry.model, label, entry.name or entry.model, str(exc)))
    return results


def _request(entry: ModelEntry, protocol: str | None, sweep: SweepFile, data_root: Path, judge: Any) -> Any:
    from evalkit.session import RunRequest

    return RunRequest(
        model=entry.model,
        tasks=sweep.tasks,
        data_root=data_root,
        output=sweep.output,
        protocol=protocol,
        name=_name(entry, protocol, sweep),
        limit=sweep.limit,
        backend=BackendOptions(
            dtype=entry.dtype,
            base_url=entry.base_url,
            concurrency=entry.concurrency,
            batch_size=entry.batch_size,
            tensor_parallel_size=entry.tensor_parallel_size,
        ),
        judge=judge,
        matcher=bool(sweep.judge and sweep.judge.matcher),
        blank_images=entry.blank_images,
        model_options={
            "revision": entry.revision,
            "vision_tower": entry.vision_tower,
            "template": entry.template,
            "trust_remote_code": entry.trust_remote_code,
        },
    )


def _name(entry: ModelEntry, protocol: str | None, sweep: SweepFile) -> str | None:
    """The results folder: the entry's name (default: as `run` names it), with the protocol appended when
    the sweep runs several, so two protocols never share a folder."""
    several = len({p for e in sweep.models for p in sweep.protocols_of(e)}) > 1
    if not several:
        return entry.name
    from evalkit.models import resolve_model

    base = entry.name or blank_name(resolve_model(entry.model).name, entry.blank_images)
    return f"{base}@{protocol}" if protocol else base


def check_protocols(sweep: SweepFile) -> None:
    from evalkit.protocols import get_protocol

    for entry in sweep.models:
        for protocol in sweep.protocols_of(entry):
            if protocol:
                get_protocol(protocol)
    if not sweep.tasks:
        raise ConfigError("the sweep names no tasks")


def write_tables(sweep: SweepFile, skipped: list[str] | None = None) -> Path:
    """Every layout the sweep names, as md, csv and html under `<output>/tables/` (a paper's layout also with
    its published numbers beside ours); returns the folder. A layout with nothing to show (no results under
    its protocol) is left out, and why is added to `skipped`, so one table never hides the others."""
    from evalkit.fs import atomic_write
    from evalkit.reports.table import render

    tables = sweep.output / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for layout in sweep.tables:
        try:
            for fmt_name in ("md", "csv", "html"):
                atomic_write(tables / f"{layout}.{fmt_name}", render(sweep.output, layout, fmt_name))
                if layout not in ("wide", "long"):  # a paper's table: also with its published numbers
                    compared = render(sweep.output, layout, fmt_name, compare=True)
                    atomic_write(tables / f"{layout}-vs-published.{fmt_name}", compared)
        except InputError as exc:
            if skipped is None:
                raise
            skipped.append(f"table {layout} not written: {exc}")
    return tables
