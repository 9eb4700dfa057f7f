"""The record files: torn last lines from a killed writer, malformed lines named, atomic rewrites."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.errors import InputError
from evalkit.records import Prediction, PredictionWriter, read_predictions


def _p(i: str) -> Prediction:
    return Prediction(
        id=i, prompt="p", output="Yes", answer="yes", score=1.0, parse="exact", meta={"target": "yes"}
    )


def test_torn_last_line_is_ignored_and_cut_on_repair(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    whole = _p("a").model_dump_json() + "\n" + _p("b").model_dump_json() + "\n"
    path.write_text(whole + _p("c").model_dump_json()[:25])
    assert [p.id for p in read_predictions(path)] == ["a", "b"]
    assert path.read_text().endswith(_p("c").model_dump_json()[:25])  # reading alone changes nothing
    assert [p.id for p in read_predictions(path, repair=True)] == ["a", "b"]
    assert path.read_text() == whole
    with PredictionWriter(path) as writer:
        writer.write([_p("c")])
    assert [p.id for p in read_predictions(path)] == ["a", "b", "c"]


def test_complete_record_without_newline_counts_as_torn(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(_p("a").model_dump_json())  # killed between the record and its newline
    assert read_predictions(path, repair=True) == []
    assert path.read_text() == ""


def test_malformed_middle_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(_p("a").model_dump_json() + '\n{"id": "x"}\n' + _p("b").model_dump_json() + "\n")
    with pytest.raises(InputError, match=r"predictions\.jsonl:2: not a prediction record"):
        read_predictions(path)


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_predictions(tmp_path / "none.jsonl") == []


def test_broken_json_is_placed_within_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(_p("a").model_dump_json() + '\n{"id": "b", \n')  # 12 characters, then the line ends
    with pytest.raises(InputError, match=r"predictions\.jsonl:2: .* at line 1 column 12\)$"):
        read_predictions(path)
