"""A tiny LLaVA-1.5-shaped model built fully offline, for demos and tests.

`build_tiny_llava` trains a byte-level BPE tokenizer on a fixed built-in corpus, builds a
CLIP-vision + Llama LLaVA model with random weights (seeded), and saves model and processor with
`save_pretrained`, so the real `AutoProcessor` / `AutoModelForImageTextToText` loading path is used.
With `train_steps > 0` the model is briefly trained on synthetic solid-colour images so that its
answers depend on the image ("Is the image red?" -> "Yes"/"No", "What colour is the image?" -> "Red").
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPVisionConfig,
    GenerationConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

__all__ = [
    "CHAT_TEMPLATE",
    "CLIP_MEAN",
    "CLIP_STD",
    "COLOURS",
    "DEFAULT_TRAIN_STEPS",
    "IMAGE_SIZE",
    "SHORT_ANSWER_PROMPT",
    "VICUNA_SYSTEM",
    "build_tiny_llava",
    "build_tokenizer",
    "colour_image",
    "colour_question",
    "vicuna_v1_prompt",
]

IMAGE_SIZE = 32
PATCH_SIZE = 8
# Patches only: the CLS token is dropped by vision_feature_select_strategy="default".
IMAGE_SEQ_LENGTH = (IMAGE_SIZE // PATCH_SIZE) ** 2
VOCAB_SIZE = 400
DEFAULT_TRAIN_STEPS = 300  # ~15-20 s on 2 CPU cores; held-out accuracy 100% in our runs
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 215, 30),
}

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
SHORT_ANSWER_PROMPT = "Answer the question using a single word or phrase."

# LLaVA-1.5-hf style: "USER: <image>\n{text} ASSISTANT:". A system message (string or text parts) is
# written first, followed by a space, so [system=VICUNA_SYSTEM, user] renders the vicuna_v1 prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['content'] is string %}"
    "{% set parts = [{'type': 'text', 'text': message['content']}] %}"
    "{% else %}{% set parts = message['content'] %}{% endif %}"
    "{% if message['role'] == 'system' %}"
    "{% for part in parts | selectattr('type', 'equalto', 'text') %}{{ part['text'] + ' ' }}{% endfor %}"
    "{% else %}"
    "{{ message['role'].upper() + ': ' }}"
    "{% for part in parts | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
    "{% for part in parts | selectattr('type', 'equalto', 'text') %}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ part['text'] + eos_token }}{% endgeneration %}"
    "{% else %}{{ part['text'] + ' ' }}{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

_QUESTION_FORMS = ("Is the image {c}?", "Is this picture {c}?", "Is the colour of the image {c}?")
_NAME_FORMS = ("What colour is the image?", "What is the colour of this picture?")


def _corpus() -> list[str]:
    """Fixed text the BPE tokenizer is trained on (chat scaffolding, demo questions, plain English)."""
    lines = [
        VICUNA_SYSTEM,
        "USER: ASSISTANT: USER: ASSISTANT:",
        SHORT_ANSWER_PROMPT,
        "Answer with the option's letter from the given choices directly.",
        "Yes No Yes No yes no True False A B C D",
        "Describe the image. What is in the picture? How many objects are there? Which one is larger?",
        "The quick brown fox jumps over the lazy dog. A photo of a cat sitting on a red chair.",
        "There is a small blue car, a green tree, a yellow sun and a white house in the picture.",
        "What is the colour of the sky? The sky is blue. Grass is green. Bananas are yellow.",
        "Question: Options: Hint: Answer: The answer is 0 1 2 3 4 5 6 7 8 9 10 100.",
    ]
    for name in COLOURS:
        lines += [form.format(c=name) for form in _QUESTION_FORMS]
        lines.append(f"The image is {name}. {name.capitalize()} {name}")
    lines += list(_NAME_FORMS)
    # The scaffolding and short answers are repeated so that BPE spends merges on them (short sequences).
    answers = " ".join(["ASSISTANT:", "Yes", "No", *(name.capitalize() for name in COLOURS)])
    return lines * 4 + [VICUNA_SYSTEM + " USER: \n" + SHORT_ANSWER_PROMPT + " ASSISTANT:", answers] * 16


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny byte-level BPE tokenizer (deterministic; adds BOS like Llama; left padding; chat template)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    bos_id = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )
    return llava_tokenizer(tok, model_max_length=512)


def llava_tokenizer(tok: Tokenizer, model_max_length: int) -> PreTrainedTokenizerFast:
    """A `tokenizers` model as a LLaVA-1.5-style transformers tokenizer: <s>/</s>/<unk>/<pad>, the <image>
    token, left padding and the vicuna chat template."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
        padding_side="left",
        model_max_length=model_max_length,
        chat_template=CHAT_TEMPLATE,
    )


def _build_processor() -> LlavaProcessor:
    """LLaVA processor whose image-token count matches the model (16 patches, CLS dropped)."""
    image_processor = CLIPImageProcessorPil(
        do_resize=True,
        size={"shortest_edge": IMAGE_SIZE},
        do_center_crop=True,
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_rescale=True,
        do_normalize=True,
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
        do_convert_rgb=True,
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(),
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        image_token="<image>",
        num_additional_image_tokens=1,
    )


def _build_model(tokenizer: PreTrainedTokenizerFast, seed: int) -> LlavaForConditionalGeneration:
    """Random-weight LLaVA (CLIP vision 64-d, Llama 64-d) with seeded initialisation."""
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = CLIPVisionConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=64,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        **ids,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=IMAGE_SEQ_LENGTH,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        tie_word_embeddings=False,
        **ids,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config = GenerationConfig(**ids, do_sample=False)
    return model.eval()


def colour_image(name: str, seed: int, size: int = IMAGE_SIZE) -> Image.Image:
    """A `size`x`size` RGB image of colour `name` (see COLOURS) with slight seeded noise and shade jitter."""
    rng = np.random.default_rng([seed, sorted(COLOURS).index(name)])
    base = np.array(COLOURS[name], dtype=np.float32) + rng.uniform(-20, 20, size=3)
    pixels = base + rng.normal(0.0, 8.0, size=(size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def vicuna_v1_prompt(question: str) -> str:
    """Format a single-image question with the vicuna_v1 template (as LLaVA-1.5 was evaluated)."""
    return f"{VICUNA_SYSTEM} USER: <image>\n{question} ASSISTANT:"


def colour_question(colour: str, form: int = 0) -> str:
    """The yes/no question "Is the image {colour}?" (form picks a paraphrase) with the short-answer hint."""
    return f"{_QUESTION_FORMS[form % len(_QUESTION_FORMS)].format(c=colour)}\n{SHORT_ANSWER_PROMPT}"


@dataclass
class _Example:
    prompt: str
    answer: str
    image: Image.Image


def _synthetic_examples(count: int, rng: random.Random, seed_offset: int) -> list[_Example]:
    """Random (image colour, question, answer) triples; half the yes/no questions ask the true colour."""
    names = list(COLOURS)
    examples = []
    for i in range(count):
        colour = rng.choice(names)
        image = colour_image(colour, seed_offset + i)
        kind = rng.random()
        if kind < 0.75:
            asked = colour if rng.random() < 0.5 else rng.choice([n for n in names if n != colour])
            question = colour_question(asked, rng.randrange(len(_QUESTION_FORMS)))
            answer = "Yes" if asked == colour else "No"
        else:
            question = f"{rng.choice(_NAME_FORMS)}\n{SHORT_ANSWER_PROMPT}"
            answer = colour.capitalize()
        # Mostly vicuna_v1; the rest as the chat template renders it without a system message.
        prompt = vicuna_v1_prompt(question) if rng.random() < 0.7 else f"USER: <image>\n{question} ASSISTANT:"
        examples.append(_Example(prompt, answer, image))
    return examples


def _encode_examples(processor: LlavaProcessor, examples: list[_Example]) -> dict[str, torch.Tensor]:
    """Tokenise prompt + " answer" + EOS, right-padded, with loss only on the answer and EOS."""
    tokenizer = processor.tokenizer
    enc = processor(text=[e.prompt for e in examples], images=[e.image for e in examples], padding=False)
    rows: list[list[int]] = []
    labels: list[list[int]] = []
    for prompt_ids, example in zip(enc["input_ids"], examples, strict=True):
        answer_ids = [
            *tokenizer.encode(" " + example.answer, add_special_tokens=False),
            tokenizer.eos_token_id,
        ]
        rows.append(list(prompt_ids) + answer_ids)
        labels.append([-100] * len(prompt_ids) + answer_ids)
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
        "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
        "labels": torch.tensor([r + [-100] * (width - len(r)) for r in labels]),
        "pixel_values": torch.as_tensor(np.asarray(enc["pixel_values"])),
    }


def _train(model: LlavaForConditionalGeneration, processor: LlavaProcessor, steps: int, seed: int) -> None:
    """Train projector + language model (vision tower frozen) on synthetic colour questions."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    pool = _encode_examples(processor, _synthetic_examples(1024, rng, seed_offset=1_000_000))
    model.model.vision_tower.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / 20) * max(0.05, 1 - step / steps)
    )
    batch_size = 32
    generator = torch.Generator().manual_seed(seed)
    # One thread: results then do not depend on the core count, and a busy 2-core CI box is not slowed
    # down by contending worker threads (tiny matrices gain little from a second thread anyway).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.train()
    try:
        for _ in range(steps):
            index = torch.randint(0, pool["input_ids"].shape[0], (batch_size,), generator=generator)
            batch = {key: value[index] for key, value in pool.items()}
            width = int(batch["attention_mask"].sum(dim=1).max())
            batch = {k: v if k == "pixel_values" else v[:, :width] for k, v in batch.items()}
            loss = model(**batch).loss
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            schedule.step()
    finally:
        torch.set_num_threads(threads)
        model.eval()


def build_tiny_llava(out_dir: Path, seed: int = 0, train_steps: int = 0) -> Path:
    """Build (and optionally train) the tiny LLaVA; save model + processor to `out_dir` and return it."""
    out_dir = Path(out_dir)
    processor = _build_processor()
    with torch.random.fork_rng(devices=[]):  # seed locally; leave the caller's RNG state alone
        model = _build_model(processor.tokenizer, seed)
        if train_steps > 0:
            _train(model, processor, train_steps, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
