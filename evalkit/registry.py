"""Task discovery: the modules of `evalkit_tasks` (the repo's tasks/ folder) and plugin folders.

A task module defines `TASK` (one Task) or `TASKS` (a list). Plugin folders are listed in
`EVALKIT_PLUGINS` (os.pathsep-separated); each `*.py` in them is loaded the same way.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
from functools import cache
from pathlib import Path
from types import ModuleType

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


def get_task(name: str) -> Task:
    tasks = all_tasks()
    if name not in tasks:
        raise ConfigError(f"unknown task {name!r} (known: {', '.join(tasks)})")
    return tasks[name]


def parse_task_list(spec: str) -> list[Task]:
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError("no task given (--tasks mme,pope)")
    return [get_task(n) for n in names]
