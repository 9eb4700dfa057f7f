"""Writes the demo's sample sets (shipped in `evalkit/demo/data/`) in MME's and POPE's release layouts.

The images are the tiny model's synthetic colours; the questions ask about the colour, so a model that
sees the image can answer. Regenerate with `python -m evalkit.demo.samples` (deterministic).
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.demo.tiny_model import COLOURS, colour_image

DATA = Path(__file__).resolve().parent / "data"
NAMES = sorted(COLOURS)


def _other(colour: str, k: int) -> str:
    others = [c for c in NAMES if c != colour]
    return others[k % len(others)]


def write_demo_data(root: Path = DATA) -> Path:
    release = root / "mme" / "MME_Benchmark_release_version"
    for i in range(12):
        colour = NAMES[i % len(NAMES)]
        nested = i >= 8  # artwork uses the images/ + questions_answers_YN/ sub-layout
        subtask, stem = ("artwork", f"{1000 + i}") if nested else ("color", f"{i:012d}")
        img_dir = release / subtask / ("images" if nested else "")
        txt_dir = release / subtask / ("questions_answers_YN" if nested else "")
        img_dir.mkdir(parents=True, exist_ok=True)
        txt_dir.mkdir(parents=True, exist_ok=True)
        colour_image(colour, seed=100 + i).save(img_dir / f"{stem}{'.jpg' if nested else '.png'}")
        lines = [
            f"Is the image {colour}? Please answer yes or no.\tYes",
            f"Is the image {_other(colour, i)}? Please answer yes or no.\tNo",
        ]
        (txt_dir / f"{stem}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    images = root / "coco" / "val2014"
    images.mkdir(parents=True, exist_ok=True)
    (root / "pope").mkdir(parents=True, exist_ok=True)
    for s, split in enumerate(("adversarial", "popular", "random")):
        rows = []
        for q in range(1, 7):
            colour = NAMES[(s + q) % len(NAMES)]
            name = f"COCO_val2014_{1000 * (s + 1) + q:012d}.jpg"
            colour_image(colour, seed=200 + 10 * s + q).save(images / name, quality=95)
            asked = colour if q % 2 else _other(colour, q)
            rows.append(
                {
                    "question_id": q,
                    "image": name,
                    "text": f"Is the image {asked}?",
                    "label": "yes" if asked == colour else "no",
                }
            )
        (root / "pope" / f"coco_pope_{split}.json").write_text(
            "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
        )
    return root


if __name__ == "__main__":
    print(write_demo_data())
