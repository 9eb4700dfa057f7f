"""Safe image loading: every failure becomes an ImageError naming its source; pad geometry by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from evalkit.data import images as images_mod
from evalkit.data.images import ImageError, expand_to_square, file_ref, load_image, safe_join
from evalkit.errors import InputError
from tests.support.fixtures import image, png_bytes, save


def test_missing_corrupt_truncated(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"image not found: .*nope\.jpg"):
        load_image(file_ref(tmp_path / "nope.jpg"))
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff not really")
    with pytest.raises(ImageError, match=r"corrupt or unsupported image: .*bad\.jpg"):
        load_image(file_ref(tmp_path / "bad.jpg"))
    data = png_bytes(Image.effect_noise((64, 64), 50))
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.png"):
        load_image(file_ref(tmp_path / "cut.png"))


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save(image("red", (40, 24)), tmp_path / "big.png")  # 960 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # over the limit (warning) and over twice it (error)
    monkeypatch.setattr(images_mod, "MAX_PIXELS", 400)
    with pytest.raises(ImageError, match=r"too large .*big\.png"):
        load_image(file_ref(tmp_path / "big.png"))


def test_loads_rgb(tmp_path: Path) -> None:
    Image.new("L", (5, 3), 200).save(tmp_path / "grey.png")
    img = load_image(file_ref(tmp_path / "grey.png"))
    assert img.mode == "RGB" and img.size == (5, 3) and img.getpixel((0, 0)) == (200, 200, 200)


def test_expand_to_square_centres_the_image() -> None:
    wide = expand_to_square(image("red", (40, 24)), (122, 116, 104))
    assert wide.size == (40, 40)
    # (40 - 24) // 2 = 8 rows of background above, the image in rows 8..31, background from row 32
    assert wide.getpixel((0, 7)) == (122, 116, 104) and wide.getpixel((0, 8)) == (220, 30, 30)
    assert wide.getpixel((39, 31)) == (220, 30, 30) and wide.getpixel((39, 32)) == (122, 116, 104)
    tall = expand_to_square(image("blue", (5, 10)), (0, 0, 0))
    assert (
        tall.size == (10, 10)
        and tall.getpixel((1, 0)) == (0, 0, 0)
        and tall.getpixel((2, 0)) == (30, 40, 220)
    )
    square = image("green", (7, 7))
    assert expand_to_square(square, (0, 0, 0)) is square


def test_safe_join(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "a/b.jpg") == (tmp_path / "a" / "b.jpg").resolve()
    for bad in ("../x.jpg", "/etc/passwd", "a/../../x"):
        with pytest.raises(InputError, match="escapes"):
            safe_join(tmp_path, bad)
