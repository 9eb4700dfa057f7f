"""Bad input through the CLI: one line naming the file and row, exit 2, never a traceback, nothing else lost.
Each case writes a benchmark in its authors' layout and breaks one thing in it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.fixtures import image, save, write_mme, write_pope
from tests.support.fixtures_judged import write_mmvet
from tests.support.fixtures_mc import write_seed, write_sqa
from tests.support.fixtures_mmbench import write_en_dev
from tests.support.fixtures_vqa2 import write_gqa
from tests.support.openai_server import FakeOpenAIServer
from tests.test_e2e_openai import colour_reply, evalkit, load_jsonl, run_args
from tests.test_runs_lose_nothing import error_line

RUN = Path("tiny-test")


def run_on(root: Path, tasks: str, out: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`evalkit run` on a data root; the data is read before any endpoint is contacted."""
    out = out or root.parent / "out"
    args = ["run", "--model", "openai:m", "--tasks", tasks, "--data-root", str(root), "--output", str(out)]
    return evalkit(*args, "--base-url", "http://127.0.0.1:9/v1")


def refused(result: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    for part in parts:
        assert part in line, line


def replace_line(path: Path, number: int, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = new
    path.write_bytes(b"\n".join(lines))


def pope_line(path: Path, number: int, **changes: object) -> None:
    """Change fields of line `number` of a POPE json-lines file (None: JSON null)."""
    obj = json.loads(path.read_text().splitlines()[number - 1])
    replace_line(path, number, json.dumps(obj | changes).encode())


# --- a clear error naming the file and row ------------------------------------------------------------


def _mme_bytes(root: Path) -> tuple[str, str]:
    txt = next((root / "mme").rglob("*.txt"))
    replace_line(txt, 2, b"Is the image blue?\xff Please answer yes or no.\tNo")
    return "mme", f"{txt}:2: not UTF-8 text (byte 0xff)"


def _pope_bytes(root: Path) -> tuple[str, str]:
    path = root / "pope" / "coco_pope_random.json"
    replace_line(path, 2, b'{"question_id": 2, "image": "x\xe9.jpg", "text": "Is it?", "label": "yes"}')
    return "pope", f"{path}:2: not UTF-8 text (byte 0xe9)"


def _mmbench_cell(root: Path) -> tuple[str, str]:
    path = root / "mmbench" / "MMBench_DEV_EN.tsv"
    data = path.read_bytes()
    at = data.index(b"Which colour fills the picture?")
    line = data.count(b"\n", 0, at) + 1
    path.write_bytes(data[:at] + b"\xc3(" + data[at + 2 :])
    return "mmbench_en_dev", f"{path}:{line}: a cell is not UTF-8 text (byte 0xc3)"


def _pope_image_number(root: Path) -> tuple[str, str]:
    path = root / "pope" / "coco_pope_popular.json"
    pope_line(path, 1, image=7)
    return "pope", f"{path}:1: image is a whole number (7), expected text"


def _pope_text_null(root: Path) -> tuple[str, str]:
    path = root / "pope" / "coco_pope_adversarial.json"
    pope_line(path, 2, text=None)
    return "pope", f"{path}:2: text is null (None), expected text"


def _pope_label(root: Path) -> tuple[str, str]:
    path = root / "pope" / "coco_pope_adversarial.json"
    pope_line(path, 1, label="maybe")
    return "pope", f"{path}:1: label 'maybe' is neither yes nor no"


def _pope_empty_split(root: Path) -> tuple[str, str]:
    path = root / "pope" / "coco_pope_random.json"
    path.write_text("\n")
    return "pope", f"{path}: no questions in it"


def _pope_escape(root: Path) -> tuple[str, str]:
    path = root / "pope" / "coco_pope_random.json"
    pope_line(path, 1, image="../../../etc/passwd")
    return "pope", f"{path}:1: path '../../../etc/passwd' escapes the data folder"


def _seed_question(root: Path) -> tuple[str, str]:
    path = root / "seed_bench" / "SEED-Bench.json"
    data = json.loads(path.read_text())
    data["questions"][1]["question"] = 42
    path.write_text(json.dumps(data))
    return "seed_image", f"{path}: question 2: question is a whole number (42), expected text"


def _sqa_question_null(root: Path) -> tuple[str, str]:
    path = root / "scienceqa" / "problems.json"
    data = json.loads(path.read_text())
    data["1"]["question"] = None
    path.write_text(json.dumps(data))
    return "scienceqa_img", f"{path}: problem 1: question is null (None), expected text"


def _sqa_choices(root: Path) -> tuple[str, str]:
    path = root / "scienceqa" / "problems.json"
    data = json.loads(path.read_text())
    data["2"]["choices"] = "red, blue"
    path.write_text(json.dumps(data))
    return "scienceqa_img", f"{path}: problem 2: choices is text ('red, blue'), expected a list"


def _mmvet_imagename(root: Path) -> tuple[str, str]:
    path = root / "mmvet" / "mm-vet.json"
    data = json.loads(path.read_text())
    key = next(iter(data))
    data[key]["imagename"] = 3
    path.write_text(json.dumps(data))
    return "mmvet", f"{path}: {key}: imagename is a whole number (3), expected text"


def _header_only_tsv(root: Path) -> tuple[str, str]:
    path = root / "mmbench" / "MMBench_DEV_EN.tsv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    return "mmbench_en_dev", f"{path} holds no samples"


def _dev_without_answers(root: Path) -> tuple[str, str]:
    import pandas as pd

    path = root / "mmbench" / "MMBench_DEV_EN.tsv"
    pd.read_csv(path, sep="\t", dtype=str).drop(columns=["answer"]).to_csv(path, sep="\t", index=False)
    return "mmbench_en_dev", f"{path}:1: no 'answer' column in the header"


CASES: dict[str, tuple[Callable[[Path], object], Callable[[Path], tuple[str, str]]]] = {
    "mme-bytes": (write_mme, _mme_bytes),
    "pope-bytes": (write_pope, _pope_bytes),
    "mmbench-cell-bytes": (write_en_dev, _mmbench_cell),
    "pope-image-number": (write_pope, _pope_image_number),
    "pope-text-null": (write_pope, _pope_text_null),
    "pope-label": (write_pope, _pope_label),
    "pope-empty-split": (write_pope, _pope_empty_split),
    "pope-path-escape": (write_pope, _pope_escape),
    "seed-question-number": (write_seed, _seed_question),
    "sqa-question-null": (write_sqa, _sqa_question_null),
    "sqa-choices-not-a-list": (write_sqa, _sqa_choices),
    "mmvet-imagename-number": (write_mmvet, _mmvet_imagename),
    "tsv-header-only": (write_en_dev, _header_only_tsv),
    "mmbench-dev-without-answers": (write_en_dev, _dev_without_answers),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_data_is_one_line_naming_file_and_row(case: str, tmp_path: Path) -> None:
    write, breaks = CASES[case]
    root = tmp_path / "data"
    write(root)
    task, message = breaks(root)
    refused(run_on(root, task), message)
    assert not (tmp_path / "out").exists()  # refused before any folder was made


# --- score and export: the right task, clean records ------------------------------------------------


def test_score_refuses_bad_answer_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_pope(root)
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"question_id": 1, "text": "Yes"}\n{"question_id": 2, "text": null}\n')
    score = ["score", "--task", "pope", "--predictions", str(answers), "--data-root", str(root)]
    refused(evalkit(*score), f"{answers}:2: text is null (None), expected text")
    answers.write_bytes(b'{"question_id": 1, "text": "Yes"}\n{"question_id": 2, "text": "N\xf6"}\n')
    refused(evalkit(*score), f"{answers}:2: not UTF-8 text (byte 0xf6)")


def test_score_and_export_check_the_records_belong_to_the_task(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mme(root)
    write_pope(root)
    out = tmp_path / "out"
    with FakeOpenAIServer(colour_reply) as server:
        assert evalkit(*run_args(server, root, out, "mme,pope")).returncode == 0
    pope = out / RUN / "pope"
    refused(
        evalkit("score", "--task", "gqa", "--predictions", str(pope / "predictions.jsonl")),
        "these are pope records (its manifest.json), not gqa",
    )
    loose = tmp_path / "loose.jsonl"  # the same records away from their run folder: their metadata tells
    shutil.copy(pope / "predictions.jsonl", loose)
    refused(evalkit("score", "--task", "gqa", "--predictions", str(loose)), "not gqa record")
    twice = tmp_path / "twice.jsonl"
    lines = loose.read_text().splitlines()
    twice.write_text("\n".join([*lines, lines[0]]) + "\n")
    refused(
        evalkit("score", "--task", "pope", "--predictions", str(twice)),
        f"record {len(lines) + 1}: id {json.loads(lines[0])['id']!r} appears twice",
    )
    refused(
        evalkit("export", "mmvet", str(out / RUN / "mme"), "--out", str(tmp_path / "x.json")),
        "holds a mme run; `export mmvet` takes a run of mmvet",
    )
    assert not (tmp_path / "x.json").exists()


def test_export_mmbench_of_a_limited_run_refuses_unless_allowed(tmp_path: Path) -> None:
    from tests.tasks.test_mmbench import option_reply

    root = tmp_path / "data"
    write_en_dev(root)
    out = tmp_path / "out"
    with FakeOpenAIServer(option_reply) as server:
        assert evalkit(*run_args(server, root, out, "mmbench_en_dev", "--limit", "5")).returncode == 0
    run = out / RUN / "mmbench_en_dev"
    refused(
        evalkit("export", "mmbench", str(run), "--out", str(tmp_path / "sub.xlsx")),
        "8 of 13 mmbench_en_dev passes have no answer (8 not run",
    )
    assert not (tmp_path / "sub.xlsx").exists()
    allowed = evalkit("export", "mmbench", str(run), "--out", str(tmp_path / "sub.xlsx"), "--allow-missing")
    assert allowed.returncode == 0, allowed.stderr
    import openpyxl

    assert openpyxl.load_workbook(tmp_path / "sub.xlsx").active.max_row == 1 + 5


def test_an_export_killed_while_writing_leaves_the_old_file(tmp_path: Path) -> None:
    """xlsx is written to a temporary file and renamed: a crash inside the writer leaves the old file."""
    from openpyxl import Workbook

    from evalkit.fs import atomic_output

    target = tmp_path / "sub.xlsx"
    target.write_bytes(b"the previous, complete export")

    def crashing_save(book: Workbook, path: Path) -> None:
        Path(path).write_bytes(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the user's Ctrl-C, or any crash, in the middle of the write

    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        crashing_save(Workbook(), tmp)
    assert target.read_bytes() == b"the previous, complete export"
    assert [p.name for p in tmp_path.iterdir()] == ["sub.xlsx"]  # no temporary left behind


# --- where the output cannot be written -----------------------------------------------------------------


def _can_mount_tmpfs() -> bool:
    probe = subprocess.run(
        ["unshare", "-r", "-m", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not shutil.which("unshare") or not _can_mount_tmpfs(),
    reason="needs a user and mount namespace to mount a small tmpfs (unshare -r -m), which this OS forbids",
)
def test_disk_full_is_one_line_and_loses_nothing_written(tmp_path: Path) -> None:
    """A real full disk: the output folder is a 16 KiB tmpfs (mounted in a user and mount namespace, which
    needs no privileges), then the same command runs again once it has room."""
    root = tmp_path / "data"
    write_mme(root)
    out, kept = tmp_path / "out", tmp_path / "kept"
    out.mkdir()
    with FakeOpenAIServer(colour_reply) as server:
        command = shlex.join([sys.executable, "-m", "evalkit.cli", *run_args(server, root, out, "mme")])
        script = (
            f"mount -t tmpfs -o size=16k tmpfs {out} || exit 99\n"
            f"{command} 2> {tmp_path}/first.err; echo $? > {tmp_path}/first.rc\n"
            f"mount -o remount,size=4m {out}\n"
            f"{command} 2> {tmp_path}/second.err; echo $? > {tmp_path}/second.rc\n"
            f"cp -r {out}/. {kept}\n"
        )
        done = subprocess.run(["unshare", "-r", "-m", "sh", "-c", script], timeout=240, check=False)
    assert done.returncode != 99, "could not mount a tmpfs in a user namespace"
    first = (tmp_path / "first.err").read_text()
    assert (tmp_path / "first.rc").read_text().strip() == "2" and "Traceback" not in first
    (line,) = [x for x in first.splitlines() if x.startswith("error:")]
    assert "cannot write (No space left on device)" in line and str(out / RUN / "mme") in line
    assert (tmp_path / "second.rc").read_text().strip() == "0", (tmp_path / "second.err").read_text()
    records = load_jsonl(kept / RUN / "mme" / "predictions.jsonl")
    assert len(records) == len({r["id"] for r in records}) == 14  # the torn line cut, nothing doubled


def test_a_read_only_output_folder_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mme(root)
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    # root ignores permission bits: drop that capability for the run (setpriv, from util-linux)
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    with FakeOpenAIServer(colour_reply) as server:
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "evalkit.cli", *run_args(server, root, out, "mme")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    out.chmod(0o755)
    refused(result, str(out / RUN), "Permission denied")


def test_corrupt_manifest_and_metrics_are_named(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mme(root)
    out = tmp_path / "out"
    folder = out / RUN / "mme"
    with FakeOpenAIServer(colour_reply) as server:
        assert evalkit(*run_args(server, root, out, "mme")).returncode == 0
        (folder / "metrics.json").write_text('{"task": "mme", "n": ')
        refused(evalkit("table", str(out)), f"{folder / 'metrics.json'}: not an evalkit metrics file")
        refused(evalkit(*run_args(server, root, out, "mme")), f"{folder / 'metrics.json'}: not an evalkit")
        (folder / "metrics.json").unlink()
        (folder / "manifest.json").write_text("[1, 2")
        refused(
            evalkit(*run_args(server, root, out, "mme")),
            f"{folder / 'manifest.json'}: not an evalkit manifest",
        )
    assert len(load_jsonl(folder / "predictions.jsonl")) == 14  # nothing lost


# --- paths ------------------------------------------------------------------------------------------------


def test_a_symlink_inside_the_data_root_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_pope(root)
    store = tmp_path / "shared-image-store"
    shutil.move(root / "coco" / "val2014", store)
    (root / "coco" / "val2014").symlink_to(store)  # a shared image store, linked in by the user
    with FakeOpenAIServer(colour_reply) as server:
        result = evalkit(*run_args(server, root, tmp_path / "out", "pope"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / RUN / "pope" / "metrics.json").read_text())["metrics"]
    assert metrics["failed"] == 0 and metrics["f1"] == 100.0


def test_a_fifo_named_jpg_is_a_failed_sample_not_a_hang(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mme(root)
    png = next((root / "mme").rglob("existence/*.png"))
    png.unlink()
    os.mkfifo(png)  # opening it would wait for a writer forever
    with FakeOpenAIServer(colour_reply) as server:
        result = evalkit(*run_args(server, root, tmp_path / "out", "mme"), timeout=60)
    assert result.returncode == 0, result.stderr
    records = load_jsonl(tmp_path / "out" / RUN / "mme" / "predictions.jsonl")
    failed = [r for r in records if r["error"]]
    assert len(records) == 14 and len(failed) == 2
    assert all("not a regular file" in r["error"] for r in failed)


# --- everyday mistakes -------------------------------------------------------------------------------


def test_unknown_task_suggests_close_names(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    refused(run_on(root, "mme,mmbench_dev"), "unknown task 'mmbench_dev' (did you mean mmbench_en_dev")


def test_every_task_is_checked_before_any_model_loads(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mme(root)
    with FakeOpenAIServer(colour_reply) as server:
        result = evalkit(*run_args(server, root, tmp_path / "out", "mme,gqa"))
        assert server.calls == 0 and server.model_list_calls == 0  # MME did not run first
    refused(result, "gqa: GQA data: folder not found")
    assert not (tmp_path / "out").exists()


def test_a_group_runs_its_tasks(tmp_path: Path) -> None:
    from tests.support.fixtures_mmbench import write_cn_dev
    from tests.tasks.test_mmbench import option_reply

    root = tmp_path / "data"
    write_en_dev(root)
    write_cn_dev(root)
    with FakeOpenAIServer(option_reply) as server:
        result = evalkit(*run_args(server, root, tmp_path / "out", "mmbench"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out" / RUN).iterdir()) == ["mmbench_cn_dev", "mmbench_en_dev"]


def test_data_check_reports_what_is_there_and_what_is_missing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mme(root)
    write_gqa(root)
    lost = next((root / "gqa" / "images").iterdir())
    lost.unlink()
    result = evalkit("data", "check", "--tasks", "mme,gqa,pope", "--data-root", str(root))
    assert result.returncode == 1
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 4}
    assert "ok" in rows["mme"] and " 14 " in rows["mme"]
    assert "images missing" in rows["gqa"] and "1 of" in rows["gqa"]
    assert "missing" in rows["pope"] and "POPE" in result.stdout
    write_pope(root)
    save(image("red"), lost)
    ok = evalkit("data", "check", "--tasks", "mme,gqa,pope", "--data-root", str(root))
    assert ok.returncode == 0, ok.stdout
