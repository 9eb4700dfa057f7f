"""The blank-image ablation ("does my model look at the image?"): `--blank-images` on `run`,
`blank_images: true` on a sweep's model entry.

Every image is replaced, after it is loaded and before the protocol's image mode (pad / crop) and the
backend, by a uniform mid-grey image of the same size, so the rest of the path is what a normal run does.
Mid-grey (128, 128, 128) rather than black: it sits next to the CLIP normalisation mean LLaVA pads with
(122, 116, 104), so the vision tower gets a near-zero, content-free input, while black is an extreme input
and itself something a model can describe ("a dark image"). A model that scores as well on blank images
as on the real ones is answering from the text alone.

The setting is part of the run's pinned generation settings (`generation.blank_images` in manifest.json and
metrics.json), so a blank run never resumes into, or passes for, a normal run's folder; by default its
results folder is the model's name with `+blank` appended.
"""

from __future__ import annotations

from PIL import Image

BLANK_RGB = (128, 128, 128)
BLANK_SUFFIX = "+blank"  # appended to the default results folder name of a blank run
SETTING = "blank_images"  # the key in the generation settings


def blank_like(image: Image.Image) -> Image.Image:
    """A uniform mid-grey RGB image of `image`'s size."""
    return Image.new("RGB", image.size, BLANK_RGB)


def blank_name(name: str, blank: bool) -> str:
    """The default results folder name of a run: a blank run's gets `+blank`."""
    return name + BLANK_SUFFIX if blank else name
