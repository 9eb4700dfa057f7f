"""Prompt snapshots: for every task under every protocol it supports, the exact prompt of its fixed sample
(`evalkit/data/examples.json`) and its generation settings, kept in `tests/snapshots/prompts.json`. Any
change of wording, limit, image mode or parser fails here and shows in review; after a deliberate change
run `EVALKIT_UPDATE_SNAPSHOTS=1 pytest tests/test_prompt_snapshots.py` and read the diff."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evalkit.registry import all_tasks, example

SNAPSHOT = Path(__file__).parent / "snapshots" / "prompts.json"


def current() -> dict[str, dict[str, dict[str, object]]]:
    found: dict[str, dict[str, dict[str, object]]] = {}
    for name, task in all_tasks().items():
        sample = example(task)
        assert sample is not None, f"add a fixed sample for {name} to evalkit/data/examples.json"
        for protocol in task.protocols:
            v = task.variant(protocol)
            assert v.prompt is not None
            found.setdefault(name, {})[protocol] = {
                "prompt": v.prompt(sample),
                "max_new_tokens": v.max_new_tokens,
                "image_mode": v.image_mode,
                "parse": getattr(v.score, "__qualname__", "?"),
            }
    return found


def test_every_prompt_matches_its_snapshot() -> None:
    now = current()
    if os.environ.get("EVALKIT_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(
            json.dumps(now, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        pytest.skip("snapshots written; review the diff")
    kept = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert sorted(now) == sorted(kept), "tasks added or removed: update the snapshots"
    for name in now:
        assert now[name] == kept[name], name
