"""Protocol `llava`: the LLaVA-1.5 / ShareGPT4V official evaluation scripts (`llava/eval/model_vqa_loader.py`
and its siblings, conv_vicuna_v1), which made the seed model-zoo numbers.

Defaults: vicuna_v1 template; replies stripped (the loader strips the decoded text); images padded to a
square with the CLIP mean (per task, some benchmarks used a plain resize + centre crop); 128 new tokens
for short and yes/no answers, 1024 for multiple choice and open answers; a multiple-choice prompt of the
question, "A. text" lines and the MC instruction, read with the GENERAL option rules.
"""

from __future__ import annotations

from evalkit.data.readers import Sample
from evalkit.protocols import MC, NO_GUESSING, SHORT, Protocol
from evalkit.scoring.options import GENERAL, render_options
from evalkit.scoring.outcomes import option_match


def option_prompt(sample: Sample) -> str:
    """Question, "\\nA. text" per option, the MC instruction (LLaVA's model_vqa_loader prompts)."""
    return sample.question + render_options(sample.options) + MC


def short_prompt(sample: Sample) -> str:
    return sample.question + SHORT


PROTOCOL = Protocol(
    name="llava",
    version=1,
    description="LLaVA-1.5 / ShareGPT4V official eval scripts (model_vqa_loader, vicuna_v1, pad)",
    reference="haotian-liu/LLaVA llava/eval (v1.2.x, the LLaVA-1.5 release)",
    template="vicuna_v1",
    strip_output=True,
    image_mode="pad",
    tokenization="llava",
    max_new_tokens={"yes_no": 128, "short": 128, "option": 1024, "open": 1024, "free": 1024},
    prompts={"option": option_prompt, "short": short_prompt, "yes_no": short_prompt},
    scorers={"option": option_match(GENERAL)},
    departures=(
        NO_GUESSING,
        "reasoning blocks are kept unless --strip-reasoning (LLaVA's scripts never strip them)",
    ),
)
