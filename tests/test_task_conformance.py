"""Checks every registered task must pass: a fixture in the authors' layout, unique ids, both protocols,
the canonical answer scored right, aggregation with the primary key and the outcome counts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evalkit.protocols import PROTOCOLS
from evalkit.registry import all_tasks
from evalkit.runner import make_prediction
from tests.support.fixtures import write_mme, write_pope


def _fixtures() -> dict[str, Callable[[Path], object]]:
    """Fixture writers by task: here, plus `FIXTURES` of every tests/support/fixtures_*.py module."""
    import importlib

    found: dict[str, Callable[[Path], object]] = {"mme": write_mme, "pope": write_pope}
    for path in sorted((Path(__file__).parent / "support").glob("fixtures_*.py")):
        found |= importlib.import_module(f"tests.support.{path.stem}").FIXTURES
    return found


FIXTURES = _fixtures()
# Samples whose target cannot score under a protocol, by that protocol's published pipeline (and why)
UNSCORABLE_TARGETS = {
    ("vqav2_val", "llava", "1005"): 'LLaVA\'s EvalAI processor splits "man\'s" into "man \'s"; the official '
    "evaluation's processed answers keep \"man's\"",
}
TASKS = sorted(all_tasks())


def test_every_task_has_a_fixture() -> None:
    assert set(TASKS) <= set(FIXTURES), "add a fixture writer for each new task"


PAIRS = [(name, protocol) for name in TASKS for protocol in sorted(all_tasks()[name].protocols)]


def test_every_protocol_a_task_names_exists() -> None:
    assert {p for _, p in PAIRS} <= set(PROTOCOLS)


@pytest.mark.parametrize(("name", "protocol"), PAIRS)
def test_task_conformance(name: str, protocol: str, tmp_path: Path) -> None:
    task = all_tasks()[name]
    FIXTURES[name](tmp_path)
    samples = task.load(tmp_path / task.folder).samples
    assert samples and len({s.id for s in samples}) == len(samples)
    variant = task.variant(protocol)
    assert all(variant.prompt(s).strip() for s in samples) and variant.max_new_tokens > 0
    records = [
        make_prediction(task, variant, PROTOCOLS[protocol], s, variant.prompt(s), s.target) for s in samples
    ]
    if task.judged is not None:  # graded later by the judge: every record waits for it
        assert {r.parse for r in records} == {"pending_judge"}
        metrics = task.aggregate_for(protocol)(records)
        assert metrics["unparsed"] == 0 and metrics["failed"] == 0
        return
    scored = [r for r, s in zip(records, samples, strict=True) if s.target]  # test splits have no answers
    assert all(r.answer is not None for r in scored), "the target itself must parse"
    # deliberate exceptions: the named samples above
    expected = [r for r in scored if (name, protocol, r.id) not in UNSCORABLE_TARGETS]
    assert all(r.score == 1.0 for r in expected), "the target must score right"
    # both protocols strip replies before parsing (LLaVA's loader, lmms-eval's process_results), so the
    # target with whitespace or a newline around it reads the same, and a reasoning block before it is
    # removed under lmms-eval
    by_id = {s.id: s for s in samples}
    padded = [" {}\n", "\n{}", "{}\n\n"] + (["<think>hmm</think>\n{}"] if protocol == "lmms-eval" else [])
    for r in expected:
        for form in padded:
            s = by_id[r.id]
            again = make_prediction(task, variant, PROTOCOLS[protocol], s, "", form.format(s.target))
            assert (again.answer, again.score) == (r.answer, r.score), (r.id, form)
    metrics = task.aggregate_for("llava")(records)
    assert metrics["unparsed"] == 0 and metrics["failed"] == 0
    assert task.primary_for(protocol) in metrics or not scored
    assert all(isinstance(v, int | float) for v in metrics.values())


@pytest.mark.parametrize("name", TASKS)
def test_task_module_is_documented_and_small(name: str) -> None:
    import importlib

    module = importlib.import_module(all_tasks()[name].load.__module__)
    assert module.__doc__ and len(module.__doc__.strip().splitlines()) >= 3
    assert len(Path(module.__file__).read_text().splitlines()) <= 200
