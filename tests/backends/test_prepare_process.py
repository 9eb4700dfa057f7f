"""The hf backend's batches are prepared in a forked worker process once the model is loaded: the records are
the same as with preparation in a thread, and an error met there reaches the user as itself (one line)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends.base import Request
from evalkit.backends.hf import HFBackend
from evalkit.demo.tiny_model import build_tiny_llava
from evalkit.errors import ConfigError
from evalkit.pipeline import LazyBackend, make_batches
from evalkit.protocols import get_protocol
from evalkit.registry import get_task
from evalkit.runner import RunSettings, run_task
from tests.support.fixtures import write_pope
from tests.test_e2e_openai import load_jsonl


class Unpicklable(Exception):
    def __init__(self, path: str, row: int) -> None:  # its args do not fit its __init__: no round trip
        super().__init__(f"{path}: row {row}")
        self.lock = threading.Lock()


class PidHF(HFBackend):
    """Writes the id of the process each batch is prepared in to a file (a worker's own state is lost). Said
    to generate off the CPU (as next to a GPU), so its batches are prepared ahead however many cores the
    machine has."""

    log: Path
    fail_on: str | None = None
    unpicklable: bool = False

    @property
    def generates_on_cpu(self) -> bool:
        return False

    def prepare(self, batch: list[Request]) -> Any:
        import torch

        with self.log.open("a") as f:  # the process and its torch threads
            f.write(f"{os.getpid()} {torch.get_num_threads()}\n")
        if self.fail_on in {r.id for r in batch}:
            if self.unpicklable:
                raise Unpicklable("f.json", 3)
            raise ConfigError(f"{self.fail_on}: cannot prepare this one")
        return super().prepare(batch)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("prep")
    write_pope(tmp / "data")
    return build_tiny_llava(tmp / "tiny", seed=0), tmp / "data"


def run(
    checkpoint: Path, root: Path, out: Path, fail_on: str | None = None, unpicklable: bool = False
) -> tuple[dict[str, str], list[int]]:
    backend = PidHF(checkpoint, device="cpu")
    backend.log, backend.fail_on, backend.unpicklable = out / "pids.txt", fail_on, unpicklable
    out.mkdir(parents=True)
    settings = RunSettings(name="m", model=str(checkpoint), protocol=get_protocol("llava"), data_root=root,
                           output=out)  # fmt: skip
    try:
        run_task(get_task("pope"), settings, LazyBackend(lambda: backend, batch_size=2))
    finally:
        backend.close()
    records = load_jsonl(out / "m" / "pope" / "predictions.jsonl")
    return {r["id"]: r["output"] for r in records}, pids(backend.log)


def pids(log: Path) -> list[int]:
    return [int(line.split()[0]) for line in log.read_text().splitlines()]


def test_worker_process_gives_the_threads_records(
    setup: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint, root = setup
    in_process, pids = run(checkpoint, root, tmp_path / "process")
    # the first batch is prepared here (it loads the model); every later one in one forked worker
    assert pids[0] == os.getpid() and len(pids) > 2
    assert len(set(pids[1:])) == 1 and pids[1] != os.getpid()
    monkeypatch.setenv("EVALKIT_PREPARE_PROCESSES", "0")
    in_thread, thread_pids = run(checkpoint, root, tmp_path / "thread")
    assert set(thread_pids) == {os.getpid()}
    assert in_process == in_thread and len(in_process) == len(pids) * 2


def test_an_error_in_the_worker_is_raised_as_itself(setup: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, root = setup
    task = get_task("pope")
    batches = make_batches(task.load(root / "pope").samples, task.variant("llava"), 2)
    last = batches[-1][0].id  # prepared in the worker
    with pytest.raises(ConfigError) as raised:
        run(checkpoint, root, tmp_path / "out", fail_on=last)
    assert str(raised.value) == f"{last}: cannot prepare this one"
    seen = pids(tmp_path / "out" / "pids.txt")
    assert len(seen) == len(batches) and seen[-1] != os.getpid()


def test_an_error_that_cannot_cross_processes_is_named(setup: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, root = setup
    task = get_task("pope")
    last = make_batches(task.load(root / "pope").samples, task.variant("llava"), 2)[-1][0].id
    with pytest.raises(RuntimeError) as raised:  # never a hang, never a TypeError from unpickling
        run(checkpoint, root, tmp_path / "out", fail_on=last, unpicklable=True)
    first = str(raised.value).splitlines()[0]
    assert first == "Unpicklable: f.json: row 3 (while preparing a batch)"
    assert "Traceback" in str(raised.value)  # the worker's, to find the bug


def test_a_parallel_tokenizer_setting_does_not_hang_the_worker(
    setup: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TOKENIZERS_PARALLELISM=true the fast tokenizer's thread pool, used before the fork, deadlocked
    the forked worker; the worker turns it off for itself (the test's timeout catches a hang)."""
    checkpoint, root = setup
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    outputs, pids = run(checkpoint, root, tmp_path / "out")
    assert len(outputs) == 2 * len(pids) and pids[-1] != os.getpid()
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true"  # the runner's own setting is left alone


class OnCPU(PidHF):
    @property
    def generates_on_cpu(self) -> bool:
        return True


def run_on_cpu(checkpoint: Path, root: Path, out: Path) -> list[list[str]]:
    """(process id, torch threads) of each batch's preparation, the model generating on the CPU."""
    backend = OnCPU(checkpoint, device="cpu")
    backend.log = out / "log.txt"
    settings = RunSettings(name="m", model=str(checkpoint), protocol=get_protocol("llava"), data_root=root,
                           output=out)  # fmt: skip
    run_task(get_task("pope"), settings, LazyBackend(lambda: backend, batch_size=2))
    return [line.split() for line in backend.log.read_text().splitlines()]


def test_a_cpu_model_gets_batches_prepared_ahead_only_on_a_free_core(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    """Where the model generates on the CPU and torch's threads take every core, a preparing worker could
    only take cores from generation: batches are prepared in turn. With a core left over, the worker prepares
    ahead on it, with one torch thread (an OpenMP pool the runner used would hang a forked child on more)."""
    import torch

    checkpoint, root = setup
    cores = len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(cores)
        in_turn = run_on_cpu(checkpoint, root, tmp_path / "every-core")
        assert {int(pid) for pid, _ in in_turn} == {os.getpid()} and len(in_turn) > 2
        if cores >= 2:
            torch.set_num_threads(cores - 1)
            ahead = run_on_cpu(checkpoint, root, tmp_path / "one-free")
            assert int(ahead[0][0]) == os.getpid()  # the first batch (it loads the model)
            assert {(int(pid) != os.getpid(), int(threads)) for pid, threads in ahead[1:]} == {(True, 1)}
    finally:
        torch.set_num_threads(before)
