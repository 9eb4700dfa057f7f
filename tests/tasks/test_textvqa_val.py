"""TextVQA val: readers for the release files and the HF snapshot, exact prompts per protocol, M4C scores
and the aggregate worked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from tests.support.fixtures_vqa2 import textvqa_items, write_textvqa, write_textvqa_parquet

TEXTVQA = get_task("textvqa_val")
SHORT = "\nAnswer the question using a single word or phrase."


def _samples(root: Path) -> dict[str, object]:
    write_textvqa(root)
    return {s.id: s for s in TEXTVQA.load(root / "textvqa").samples}


def test_release_files_read(tmp_path: Path) -> None:
    ds = TEXTVQA.load(write_textvqa(tmp_path))
    assert ds.format == "authors" and ds.fingerprint.startswith("sha256:")
    by_id = {s.id: s for s in ds.samples}
    assert list(by_id) == ["34602", "34603", "34604", "34605", "34606"]
    first = by_id["34602"]
    assert first.question == "what brand is the camera?"
    assert first.meta["answers"] == list(textvqa_items()[0].answers)
    assert first.meta["ocr_tokens"] == ["DAKOTA", "DIGITAL", "Single-Use", "Camera"]
    assert first.images[0].path.endswith("textvqa/train_images/0054c91397f2fe05.jpg")
    assert by_id["34604"].meta["ocr_tokens"] == []


def test_target_is_the_most_common_processed_answer(tmp_path: Path) -> None:
    by_id = _samples(tmp_path)
    # "Dakota" x3, "DAKOTA." x2, "dakota,", "the dakota" all process to "dakota" (7 of 10): first spelling
    assert by_id["34602"].target == "Dakota"
    # "single use" x2 + "single-use" x2 = 4 beat disposable x3
    assert by_id["34603"].target == "single use"
    # "two" x2 + "2" x4 = 6 as "2"; the first spelling of that answer is "two"
    assert by_id["34604"].target == "two"


def test_snapshot_reads_the_same_samples(tmp_path: Path) -> None:
    write_textvqa(tmp_path / "a")
    write_textvqa_parquet(tmp_path / "b")
    authors = TEXTVQA.load(tmp_path / "a" / "textvqa")
    snapshot = TEXTVQA.load(tmp_path / "b" / "textvqa")
    assert snapshot.format == "hf-parquet"
    key = lambda s: (s.id, s.question, s.target, s.meta["answers"], s.meta["ocr_tokens"])  # noqa: E731
    assert [key(s) for s in snapshot.samples] == [key(s) for s in authors.samples]  # test file ignored


def test_image_missing_from_the_ocr_file_is_an_error(tmp_path: Path) -> None:
    folder = write_textvqa(tmp_path)
    ocr = folder / "TextVQA_Rosetta_OCR_v0.2_val.json"
    data = json.loads(ocr.read_text())
    data["data"] = [e for e in data["data"] if e["image_id"] != "00685bc495504d61"]
    ocr.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"entry 2: image 00685bc495504d61 has no entry in TextVQA_Rosetta"):
        TEXTVQA.load(folder)


def test_missing_or_malformed_files_are_named(tmp_path: Path) -> None:
    folder = write_textvqa(tmp_path)
    (folder / "TextVQA_Rosetta_OCR_v0.2_val.json").unlink()
    with pytest.raises(InputError, match=r"file not found: .*TextVQA_Rosetta_OCR_v0\.2_val\.json"):
        TEXTVQA.load(folder)
    (folder / "TextVQA_Rosetta_OCR_v0.2_val.json").write_text("[]")
    with pytest.raises(InputError, match=r"TextVQA_Rosetta_OCR_v0.2_val.json: expected \{'data'"):
        TEXTVQA.load(folder)


def test_prompts_per_protocol(tmp_path: Path) -> None:
    by_id = _samples(tmp_path)
    llava, lmms = TEXTVQA.variant("llava"), TEXTVQA.variant("lmms-eval")
    assert llava.prompt(by_id["34602"]) == (
        "what brand is the camera?\nReference OCR token: DAKOTA, DIGITAL, Single-Use, Camera" + SHORT
    )
    # no OCR tokens: LLaVA's file keeps the line, with nothing after "token: "
    assert llava.prompt(by_id["34604"]) == "what number is on the jersey?\nReference OCR token: " + SHORT
    # lmms-eval: str.capitalize() upper-cases the first letter and lower-cases the rest ("STOP" -> "stop")
    assert lmms.prompt(by_id["34605"]) == "What does the stop sign say?" + SHORT
    assert lmms.prompt(by_id["34602"]) == "What brand is the camera?" + SHORT
    assert (llava.max_new_tokens, llava.image_mode) == (128, "pad")
    assert (lmms.max_new_tokens, lmms.image_mode) == (1024, "native")


# Leave-one-out over the 10 processed answers, for a prediction that n annotators gave:
# mean over annotators of min(1, matches among the other 9 / 3) = (n*min(1,(n-1)/3) + (10-n)*min(1,n/3)) / 10
# n=1: (0 + 9/3)/10 = 0.3; n=2: (2/3 + 8*2/3)/10 = 0.6; n=3: (3*2/3 + 7)/10 = 0.9; n>=4: 1.0
SCORES = [
    ("34602", "Dakota.", "dakota", 1.0, "n=7 after processing"),
    ("34602", "dakota digital", "dakota digital", 0.6, "n=2"),
    ("34602", "Kodak", "kodak", 0.3, "n=1"),
    ("34603", "Single-use.", "single use", 1.0, "'-' becomes a space, '.' goes: n=4"),
    ("34603", "disposable", "disposable", 0.9, "n=3"),
    ("34603", "camera", "camera", 0.0, "n=0"),
    ("34604", "Two", "2", 1.0, "number word -> digit: n=6"),
    ("34604", "22", "22", 1.0, "n=4: a second answer with full credit"),
    ("34605", "Stop ahead", "stop ahead", 0.9, "'Stop Ahead!' processes to 'stop ahead': n=3"),
    ("34605", "The stop sign.", "stop sign", 0.0, "article dropped, still no match"),
    ("34606", "", "", 0.0, "empty reply: compared as '' (M4C does), no annotator gave it: 0"),
]


@pytest.mark.parametrize(("sid", "output", "answer", "expected", "why"), SCORES, ids=[r[4] for r in SCORES])
@pytest.mark.parametrize("protocol", ["llava", "lmms-eval"])
def test_m4c_scores(
    protocol: str, sid: str, output: str, answer: str | None, expected: float, why: str, tmp_path: Path
) -> None:
    sample = _samples(tmp_path)[sid]
    scored = TEXTVQA.variant(protocol).score(output, sample)
    assert scored.answer == answer and scored.score == pytest.approx(expected), why
    assert scored.parse == "m4c"


def test_aggregate_by_hand(tmp_path: Path) -> None:
    by_id = _samples(tmp_path)
    variant = TEXTVQA.variant("llava")
    outputs = {"34602": "Dakota.", "34603": "disposable", "34604": "Two", "34605": "Stop ahead", "34606": " "}
    records = [
        make_prediction(TEXTVQA, variant, PROTOCOLS["llava"], by_id[sid], "", out)
        for sid, out in outputs.items()
    ]
    # 1.0 + 0.9 + 1.0 + 0.9 + 0 (blank reply, scored as "": no annotator said it) = 3.8 over 5 -> 76%
    assert TEXTVQA.aggregate_for("llava")(records) == {"accuracy": 76.0, "unparsed": 0, "failed": 0}
    assert records[0].meta["answers"] == list(textvqa_items()[0].answers)  # kept for re-scoring
