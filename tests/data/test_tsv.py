"""The MMBench-style TSV reader: quoted cells as pandas writes them, back-references, case-insensitive
columns, and errors that name the file and line."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
import pytest

from evalkit.data.images import image_bytes, load_image
from evalkit.data.tsv import read_tsv
from evalkit.errors import InputError
from tests.support.fixtures import image, png_bytes

RED = png_bytes(image("red"))
BLUE = png_bytes(image("blue"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write(tmp_path: Path, text: str, name: str = "t.tsv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_quoted_cells_keep_tabs_newlines_and_quotes(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "index": [0, 1, 2],
            "hint": ["two\nlines and a\ttab", "", 'say "hi"'],
            "question": ["q0", "q1 中文", "q2"],
            "image": [b64(RED), b64(BLUE), "0"],
        }
    )
    path = tmp_path / "pandas.tsv"
    frame.to_csv(path, sep="\t", index=False)  # how the benchmark files were written
    raw = path.read_text(encoding="utf-8")
    assert '"two\nlines and a\ttab"' in raw and '"say ""hi"""' in raw  # pandas quoted them
    rows = read_tsv(path)
    assert [r.values["hint"] for r in rows] == ["two\nlines and a\ttab", "", 'say "hi"']
    assert [r.get("question") for r in rows] == ["q0", "q1 中文", "q2"]
    assert [r.number for r in rows] == [2, 4, 5]  # the quoted newline makes record 1 span lines 2-3
    assert "image" not in rows[0].values


def test_images_are_spans_and_back_references_share_them(tmp_path: Path) -> None:
    text = (
        "index\tquestion\timage\n"
        f"7\tq7\t9\n"  # refers to a row further down
        f"8\tq8\t{b64(RED)}\n"
        f"9\tq9\t{b64(BLUE)}\n"
        "1000008\tq8 again\t8\n"
        "10\tno image\t\n"
    )
    rows = read_tsv(write(tmp_path, text))
    by_index = {r.values["index"]: r for r in rows}
    assert by_index["7"].image == by_index["9"].image  # the same reference: decoded once
    assert by_index["1000008"].image == by_index["8"].image
    assert by_index["8"].image.kind == "span" and image_bytes(by_index["8"].image) == RED
    assert load_image(by_index["7"].image).getpixel((0, 0)) == (30, 40, 220)
    assert by_index["10"].image is None


def test_column_names_match_case_insensitively_and_crlf_is_read(tmp_path: Path) -> None:
    text = f"Index\tQuestion\tL2-category\tIMAGE\r\n3\tWhat?\tcoarse_perception\t{b64(RED)}\r\n"
    (row,) = read_tsv(write(tmp_path, text))
    assert row.values == {"index": "3", "question": "What?", "l2-category": "coarse_perception"}
    assert row.get("L2-Category") == "coarse_perception" and image_bytes(row.image) == RED


def test_wrong_cell_count_names_file_and_line(tmp_path: Path) -> None:
    text = f'index\thint\timage\n0\t"a\nb"\t{b64(RED)}\n1\tonly two cells\n'
    with pytest.raises(InputError, match=r"bad\.tsv:4: 2 cells, the header has 3"):
        read_tsv(write(tmp_path, text, "bad.tsv"))


def test_back_reference_to_a_missing_index(tmp_path: Path) -> None:
    text = f"index\timage\n0\t{b64(RED)}\n1\t0\n2\t5\n"
    with pytest.raises(InputError, match=r"ref\.tsv:4: image refers to index '5', which has no image"):
        read_tsv(write(tmp_path, text, "ref.tsv"))


def test_unterminated_quote_and_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"open\.tsv:3: unterminated quoted cell"):
        read_tsv(write(tmp_path, f'index\thint\timage\n0\tok\t{b64(RED)}\n1\t"never closed\t0\n', "open.tsv"))
    with pytest.raises(InputError, match=r"cols\.tsv:1: no 'index', 'image' column in the header"):
        read_tsv(write(tmp_path, "idx\tquestion\n0\tq\n", "cols.tsv"))
    with pytest.raises(InputError, match=r"file not found: .*nope\.tsv"):
        read_tsv(tmp_path / "nope.tsv")


def test_bom_crlf_after_quoted_cell_and_empty_file(tmp_path: Path) -> None:
    image = "A" * 100  # any cell longer than 64 characters is image data
    path = tmp_path / "crlf.tsv"
    text = f'\ufeffindex\timage\tquestion\r\n1\t{image}\t"two\r\nlines"\r\n2\t1\t"quoted, last"\r\n'
    path.write_bytes(text.encode())
    rows = read_tsv(path)
    assert [r.values["question"] for r in rows] == ["two\r\nlines", "quoted, last"]
    assert rows[1].image == rows[0].image  # back-reference to row 1
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        read_tsv(empty)
