"""Task discovery: the modules of `evalkit_tasks` (the repo's tasks/ folder) and plugin folders, and the
task groups (`groups.yaml`) that name several tasks at once.

A task module defines `TASK` (one Task) or `TASKS` (a list). Plugin folders are listed in
`EVALKIT_PLUGINS` (os.pathsep-separated); each `*.py` in them is loaded the same way.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import os
import pkgutil
from functools import cache
from importlib.resources import files
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from evalkit.data.readers import Sample
from evalkit.errors import ConfigError
from evalkit.task import Task


def _tasks_of(module: ModuleType) -> list[Task]:
    found: list[Task] = []
    if isinstance(getattr(module, "TASK", None), Task):
        found.append(module.TASK)
    found.extend(t for t in getattr(module, "TASKS", ()) if isinstance(t, Task))
    return found


def _plugin_modules() -> list[ModuleType]:
    modules: list[ModuleType] = []
    for folder in filter(None, os.environ.get("EVALKIT_PLUGINS", "").split(os.pathsep)):
        for path in sorted(Path(folder).glob("*.py")):
            spec = importlib.util.spec_from_file_location(f"evalkit_plugin_{path.stem}", path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            modules.append(module)
    return modules


@cache
def all_tasks() -> dict[str, Task]:
    import evalkit_tasks

    modules = [
        importlib.import_module(f"evalkit_tasks.{info.name}")
        for info in pkgutil.iter_modules(evalkit_tasks.__path__)
        if not info.name.startswith("_")
    ]
    tasks: dict[str, Task] = {}
    for module in modules + _plugin_modules():
        for task in _tasks_of(module):
            if task.name in tasks:
                raise ConfigError(f"task {task.name!r} is defined twice (second in {module.__name__})")
            tasks[task.name] = task
    return dict(sorted(tasks.items()))


@cache
def task_groups() -> dict[str, tuple[str, ...]]:
    """Group name -> its tasks, from the packaged `groups.yaml`; every member must be a task."""
    source = files("evalkit").joinpath("groups.yaml")
    raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    tasks = all_tasks()
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in raw.items():
        if name in tasks:  # a plugin task took the name: the task wins
            continue
        if not isinstance(members, list) or not members:
            raise ConfigError(f"{source}: group {name!r} must be a list of tasks")
        if unknown := [m for m in members if m not in tasks]:
            raise ConfigError(f"{source}: group {name!r} names unknown task(s) {', '.join(unknown)}")
        groups[str(name)] = tuple(members)
    return groups


@cache
def _examples() -> dict[str, dict[str, Any]]:
    return json.loads(files("evalkit").joinpath("data/examples.json").read_text(encoding="utf-8"))


def example(task: Task) -> Sample | None:
    """A fixed sample of the task, in the shape its loader gives (`data/examples.json`): what `evalkit show
    protocol` renders and the prompt snapshots keep, so the exact model input is seen without any data."""
    found = _examples().get(task.name)
    if found is None:
        return None
    return Sample(
        id=found["id"], images=(), question=found["question"], target=found["target"], meta=found["meta"]
    )


def _unknown(name: str) -> ConfigError:
    """An unknown name, with the closest task or group names as suggestions."""
    known = [*all_tasks(), *task_groups()]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    close += [k for k in known if name and name in k and k not in close][: 3 - len(close)]
    hint = (
        f"did you mean {', '.join(close)}?" if close else "see `evalkit list tasks` and `evalkit list groups`"
    )
    return ConfigError(f"unknown task {name!r} ({hint})")


def get_task(name: str) -> Task:
    tasks = all_tasks()
    if name not in tasks:
        raise _unknown(name)
    return tasks[name]


def parse_task_list(spec: str | list[str]) -> list[Task]:
    """Tasks from names and group names ("mme,mmbench" or a list), each once, in the order given."""
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    if not names:
        raise ConfigError("no task given (--tasks mme,pope)")
    groups = task_groups()
    chosen: dict[str, Task] = {}
    for name in names:
        for member in groups.get(name, (name,)):
            chosen.setdefault(member, get_task(member))
    return list(chosen.values())
