"""Protocol `vlmevalkit`: VLMEvalKit with its `LLaVA_XTuner` model wrapper in exact-matching mode (no GPT
judge), the pipeline the xtuner LLaVA-Llama-3 model card names. Read at open-compass/VLMEvalKit 3562b54f
(2024-04-25, the card's week; nothing that scores changed from 64a45c4f, 2024-04-19, to it); POPE as first
added (f84d7c5e, 2024-04-29) and GQA as added (3dfe2971, 2024-09-03), the two card columns VLMEvalKit could
not run that week.

Per answer kind, as VLMEvalKit groups its datasets:
- multiple choice: the wrapper's own prompt, `[hint\\n]question\\nA. x\\nB. y\\n` + "Answer with the option's
  letter from the given choices directly." (`请直接回答选项字母。` when the text holds any CJK character); 5
  new tokens, greedy; VLMEvalKit's `can_infer` (MMBench's official matching); circular groups all-right.
- yes/no (MME, HallusionBench, POPE): the question as stored, nothing added; 5 new tokens, greedy;
  `YOrN_Extraction` (a lone "yes" or "no" among the words; both or neither: Unknown, wrong).
- short answers (TextVQA): question + "\\nPlease try to answer the question with short words or phrases if
  possible\\n." (sic); VLMEvalKit's VQA score (both sides always normalised, leave-one-out min(1, n/3)).
Images are padded to a square with the image processor's mean (the wrapper's expand2square); the reply is
stripped; the conversation template is the model's (the wrapper applies the xtuner template its model
config names: llama3_chat for LLaVA-Llama-3, no system prompt).
"""

from __future__ import annotations

import re

from evalkit.data.mcq import is_missing
from evalkit.data.readers import Sample
from evalkit.protocols import MC, MC_CN, NO_GUESSING, Protocol
from evalkit.scoring.options import MMBENCH, render_options
from evalkit.scoring.outcomes import label_match, option_match, vqa_match
from evalkit.scoring.vqa import vqa_vlmeval
from evalkit.scoring.yesno import yes_no_words

COMMIT = "3562b54f9e9fea112b08aa2bfdfaf3546433840a"
TEXTVQA_SUFFIX = "\nPlease try to answer the question with short words or phrases if possible\n."
_CJK = re.compile("[\u4e00-\u9fff]")


def option_prompt(sample: Sample) -> str:
    """LLaVA_XTuner.build_prompt: hint line (when present), question, "\\nA. text" per option, the letter
    instruction in English, or in Chinese when the hint, question or options hold a CJK character."""
    hint = sample.hint  # as pandas reads VLMEvalKit's TSVs: "nan", "None", "N/A"... are no hint
    question = ("" if hint is None or is_missing(hint) else f"{hint}\n") + sample.question
    question += render_options(sample.options)
    return question + (MC_CN if _CJK.search(question) else MC)


def verbatim(sample: Sample) -> str:
    """Yes/no datasets: the question as stored."""
    return sample.question


def short_prompt(sample: Sample) -> str:
    """VQA datasets (TextVQA at 3562b54f): the question and VLMEvalKit's short-answer request."""
    return sample.question + TEXTVQA_SUFFIX


PROTOCOL = Protocol(
    name="vlmevalkit",
    version=1,
    description="VLMEvalKit with LLaVA_XTuner, exact matching (the xtuner LLaVA-Llama-3 card's pipeline)",
    reference=f"open-compass/VLMEvalKit {COMMIT[:8]} (2024-04-25); POPE f84d7c5e, GQA 3dfe2971",
    template=None,
    own_template="trained",
    tokenization="llava",  # LLaVA_XTuner encodes the text around <image> chunk by chunk, BOS on the first
    strip_output=True,
    image_mode="pad",
    max_new_tokens={"option": 5, "yes_no": 5, "short": 512},
    prompts={"option": option_prompt, "yes_no": verbatim, "short": short_prompt},
    scorers={
        "option": option_match(MMBENCH),
        "yes_no": label_match(yes_no_words),
        "short": vqa_match(vqa_vlmeval),
    },
    departures=(
        NO_GUESSING + " (VLMEvalKit's exact matching scores an unmatched reply wrong too, and counts none)",
        "short answers are decoded greedily; LLaVA_XTuner samples them (do_sample, temperature 1, 5 beams, "
        "512 tokens), which no rerun reproduces",
        "images are read from the benchmark's own files; VLMEvalKit's TSVs hold JPEG re-encodes (quality "
        "75), and its AI2D_TEST replaces some diagrams' text boxes with letters",
        "the benchmark files are the authors' (or an HF snapshot), not VLMEvalKit's TSVs; where the TSV's "
        "text differs (e.g. pandas reading an option 'None' as missing), evalkit keeps the authors' text",
    ),
)
