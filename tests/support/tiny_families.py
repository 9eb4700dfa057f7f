"""Tiny image-text-to-text checkpoints of the families transformers ships, built offline for tests.

Each `build_*` function trains a small byte-level BPE tokenizer holding the family's special tokens,
writes the family's processor (PIL image processor: torchvision is not a dependency) with a small chat
template modelled on the real family's, builds the model with random seeded weights (hidden size 32,
one or two layers, images of 32-64 pixels) and saves both as `save_pretrained` does, so that
`AutoProcessor.from_pretrained(folder)` and `AutoModelForImageTextToText.from_pretrained(folder)` load
them as they load a real checkpoint.

Qwen2-VL, LLaVA-OneVision and SmolVLM processors hold a video processor, which transformers 5.24 builds
only with torchvision (SmolVLM's also wants num2words): their files are written directly, and they load
as real checkpoints of theirs do - refused without those packages (`EXTRA_PACKAGES`), or for images only
under `stand_in_missing_packages`.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, PreTrainedTokenizerFast

__all__ = [
    "EXTRA_PACKAGES",
    "FAMILIES",
    "NoVideoProcessor",
    "build_family",
    "missing_packages",
    "stand_in_missing_packages",
]

VOCAB_SIZE = 360

_CORPUS = [
    "user model assistant system User: Assistant: USER: ASSISTANT:",
    "Describe the image. What is in the picture? How many objects are there? Which one is larger?",
    "The quick brown fox jumps over the lazy dog. A photo of a cat sitting on a red chair.",
    "There is a small blue car, a green tree, a yellow sun and a white house in the picture.",
    "Answer the question using a single word or phrase. Yes No A B C D 0 1 2 3 4 5 6 7 8 9",
    "answer en caption en What colour is the image? Compare the two images.",
]


def _tokenizer(
    specials: list[str],
    *,
    bos: str | None,
    eos: str,
    pad: str,
    unk: str | None = None,
    add_bos: bool = False,
    extra: dict[str, str] | None = None,
) -> PreTrainedTokenizerFast:
    """A deterministic byte-level BPE tokenizer with `specials` as its first ids."""
    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE + len(specials),
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    if add_bos:
        assert bos is not None
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    named = {"bos_token": bos, "eos_token": eos, "pad_token": pad, "unk_token": unk}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        **{k: v for k, v in named.items() if v is not None},
        extra_special_tokens=extra or {},
        padding_side="left",
        model_max_length=4096,
    )


def _ids(tokenizer: Any) -> dict[str, int | None]:
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _save_model(model: Any, tokenizer: Any, out_dir: Path, eos_ids: list[int] | int) -> Path:
    """Save the model with a greedy generation config naming the family's stop tokens."""
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos_ids,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out_dir)
    return out_dir


def _save(model: Any, processor: Any, out_dir: Path, eos_ids: list[int] | int) -> Path:
    out_dir = _save_model(model, processor.tokenizer, out_dir, eos_ids)
    processor.save_pretrained(out_dir)
    return out_dir


def _save_parts(
    model: Any,
    tokenizer: Any,
    image_processor: Any,
    fields: dict[str, Any],
    chat_template: str,
    out_dir: Path,
    eos_ids: list[int] | int,
) -> Path:
    """Save a checkpoint whose processor holds a video processor, which transformers cannot construct
    without torchvision: the files `save_pretrained` writes (processor_config.json with the image and
    video processors' settings, chat_template.jinja, the tokenizer's files) are written here directly."""
    out_dir = _save_model(model, tokenizer, out_dir, eos_ids)
    tokenizer.save_pretrained(out_dir)
    config = {"image_processor": json.loads(image_processor.to_json_string()), **fields}
    (out_dir / "processor_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out_dir / "chat_template.jinja").write_text(chat_template)
    return out_dir


def _seeded(seed: int, make: Callable[[], Any]) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def _siglip(image_size: int, patch_size: int, **more: Any) -> Any:
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
        **more,
    )


# --------------------------------------------------------------------------------------------- Gemma 3

# After google/gemma-3-4b-it's template: BOS, <start_of_turn>role, the image marker <start_of_image> where
# the image part is, text trimmed, <end_of_turn>; generation prompt "<start_of_turn>model\n".
GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


def build_gemma3(out_dir: Path, seed: int = 0) -> Path:
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessorPil,
        Gemma3Processor,
        Gemma3TextConfig,
    )

    tokenizer = _tokenizer(
        [
            "<pad>",
            "<eos>",
            "<bos>",
            "<unk>",
            "<start_of_turn>",
            "<end_of_turn>",
            "<start_of_image>",
            "<end_of_image>",
            "<image_soft_token>",
        ],
        bos="<bos>",
        eos="<eos>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra={
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "image_token": "<image_soft_token>",
        },
    )
    tokens_per_image = 4  # 32 px / 8 px patches = 4x4, pooled to 2x2
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessorPil(
            size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3
        ),
        tokenizer=tokenizer,
        image_seq_length=tokens_per_image,
        chat_template=GEMMA3_TEMPLATE,
    )
    config = Gemma3Config(
        text_config=Gemma3TextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=64,
            max_position_embeddings=1024,
            **_ids(tokenizer),
        ),
        vision_config=_siglip(32, 8),
        mm_tokens_per_image=tokens_per_image,
        boi_token_index=tokenizer.convert_tokens_to_ids("<start_of_image>"),
        eoi_token_index=tokenizer.convert_tokens_to_ids("<end_of_image>"),
        image_token_index=tokenizer.convert_tokens_to_ids("<image_soft_token>"),
        **_ids(tokenizer),
    )

    def make() -> Any:
        model = Gemma3ForConditionalGeneration(config)
        # Gemma 3 initialises its image projection to zeros: images would not reach the reply at all
        torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=0.5)
        return model

    model = _seeded(seed, make)
    eos = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")]
    return _save(model, processor, out_dir, eos)


# --------------------------------------------------------------------------------------------- Idefics3

# After HuggingFaceM4/Idefics3-8B-Llama3's template: "<|begin_of_text|>User:<image>text<end_of_utterance>\n"
# then "Assistant:"; ":" alone before a leading image, ": " before text.
IDEFICS3_TEMPLATE = (
    "<|begin_of_text|>"
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}"
    "{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}"
    "{% endfor %}<end_of_utterance>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


# ------------------------------------------------------------------------------------- Idefics3 / SmolVLM


def _tiling(image_size: int) -> dict[str, Any]:
    """The image processor settings Idefics3 and SmolVLM share: a global image plus tiles of image_size."""
    return {
        "do_resize": True,
        "size": {"longest_edge": 2 * image_size},
        "do_image_splitting": True,
        "max_image_size": {"longest_edge": image_size},
        "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3,
    }


def _tiled_config(
    config_class: Any, vision_class: Any, tokenizer: Any, image_size: int, patch_size: int, scale_factor: int
) -> Any:
    """Idefics3's model config (SmolVLM's has the same fields): a tiny vision tower and Llama."""
    from transformers import LlamaConfig

    return config_class(
        vision_config=vision_class(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=patch_size,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            tie_word_embeddings=False,
            **_ids(tokenizer),
        ),
        scale_factor=scale_factor,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=False,
        **_ids(tokenizer),
    )


def build_idefics3(out_dir: Path, seed: int = 0) -> Path:
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
        Idefics3VisionConfig,
    )

    rows_cols = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tokenizer = _tokenizer(
        [
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|finetune_right_pad_id|>",
            "<fake_token_around_image>",
            "<image>",
            "<end_of_utterance>",
            "<global-img>",
            *rows_cols,
        ],
        bos="<|begin_of_text|>",
        eos="<|end_of_text|>",
        pad="<|finetune_right_pad_id|>",
        add_bos=True,
    )
    image_size, patch_size, scale_factor = 32, 8, 2
    seq_len = (image_size // patch_size) ** 2 // scale_factor**2
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessorPil(**_tiling(image_size)),
        tokenizer=tokenizer,
        image_seq_len=seq_len,
        chat_template=IDEFICS3_TEMPLATE,
    )
    config = _tiled_config(
        Idefics3Config, Idefics3VisionConfig, tokenizer, image_size, patch_size, scale_factor
    )
    model = _seeded(seed, lambda: Idefics3ForConditionalGeneration(config))
    eos = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_utterance>")]
    return _save(model, processor, out_dir, eos)


# ---------------------------------------------------------------------------------------------- SmolVLM

# HuggingFaceTB/SmolVLM-256M-Instruct's template (transformers' SmolVLM default): "<|im_start|>User:<image>
# text<end_of_utterance>\n" then "Assistant:"; the tokenizer adds no BOS.
SMOLVLM_TEMPLATE = "<|im_start|>" + IDEFICS3_TEMPLATE.removeprefix("<|begin_of_text|>")


def build_smolvlm(out_dir: Path, seed: int = 0) -> Path:
    """SmolVLM (Idefics3's architecture and image tiling; its processor holds a video processor)."""
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessorPil,
        SmolVLMVisionConfig,
    )

    rows_cols = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tokenizer = _tokenizer(
        [
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<fake_token_around_image>",
            "<image>",
            "<end_of_utterance>",
            "<global-img>",
            *rows_cols,
        ],
        bos="<|im_start|>",
        eos="<end_of_utterance>",
        pad="<|im_end|>",
        unk="<|endoftext|>",
        extra={
            "fake_image_token": "<fake_token_around_image>",
            "image_token": "<image>",
            "global_image_token": "<global-img>",
            "end_of_utterance_token": "<end_of_utterance>",
        },
    )
    image_size, patch_size, scale_factor = 32, 8, 2
    image_processor = SmolVLMImageProcessorPil(**_tiling(image_size))
    config = _tiled_config(
        SmolVLMConfig, SmolVLMVisionConfig, tokenizer, image_size, patch_size, scale_factor
    )
    model = _seeded(seed, lambda: SmolVLMForConditionalGeneration(config))
    video_processor = {
        "video_processor_type": "SmolVLMVideoProcessor",
        "size": {"longest_edge": 2 * image_size},
        "max_image_size": {"longest_edge": image_size},
        "video_sampling": {"fps": 1, "max_frames": 8, "video_size": {"longest_edge": 2 * image_size}},
        "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3,
    }
    fields = {
        "processor_class": "SmolVLMProcessor",
        "image_seq_len": (image_size // patch_size) ** 2 // scale_factor**2,
        "video_processor": video_processor,
    }
    return _save_parts(
        model, tokenizer, image_processor, fields, SMOLVLM_TEMPLATE, out_dir, tokenizer.eos_token_id
    )


# --------------------------------------------------------------------------------------------- PaliGemma

# PaliGemma checkpoints ship no chat template; the processor's own prompt layout is "<image>"*n, BOS,
# the prefix text, "\n" (the processor inserts BOS and "\n" itself). The template writes the images first.
PALIGEMMA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% endif %}{% endif %}{% endfor %}"
)


def build_paligemma(out_dir: Path, seed: int = 0) -> Path:
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessorPil,
    )

    tokenizer = _tokenizer(
        ["<pad>", "<eos>", "<bos>", "<unk>", "<image>"],
        bos="<bos>",
        eos="<eos>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra={"image_token": "<image>"},
    )
    image_size, patch_size = 32, 8
    image_processor = SiglipImageProcessorPil(
        size={"height": image_size, "width": image_size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    image_processor.image_seq_length = (image_size // patch_size) ** 2
    processor = PaliGemmaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=PALIGEMMA_TEMPLATE
    )  # adds the <loc....> / <seg...> tokens
    config = PaliGemmaConfig(
        vision_config=_siglip(image_size, patch_size),
        text_config=GemmaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=1024,
            tie_word_embeddings=False,
            **_ids(tokenizer),
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vocab_size=len(tokenizer),
        projection_dim=32,
        hidden_size=32,
        tie_word_embeddings=False,  # tied, a tiny random Gemma repeats its last input token
        **_ids(tokenizer),
    )
    model = _seeded(seed, lambda: PaliGemmaForConditionalGeneration(config))
    return _save(model, processor, out_dir, tokenizer.eos_token_id)


# --------------------------------------------------------------------------------------------- Qwen2-VL

# After Qwen/Qwen2-VL-2B-Instruct's template: default system turn, "<|im_start|>user\n", each image as
# "<|vision_start|><|image_pad|><|vision_end|>", the text, "<|im_end|>\n"; "<|im_start|>assistant\n".
QWEN2_VL_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_qwen2_vl(out_dir: Path, seed: int = 0) -> Path:
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    tokenizer = _tokenizer(
        [
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<|vision_start|>",
            "<|vision_end|>",
            "<|image_pad|>",
            "<|video_pad|>",
        ],
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        extra={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    patch_size, merge_size = 8, 2
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=patch_size,
        merge_size=merge_size,
        temporal_patch_size=2,
        min_pixels=32 * 32,
        max_pixels=64 * 64,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    ids = {
        "bos_token_id": None,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 1024,
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
            **ids,
        },
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 32,
            "mlp_ratio": 2,
            "num_heads": 2,
            "patch_size": patch_size,
            "spatial_merge_size": merge_size,
            "temporal_patch_size": 2,
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
        **ids,
    )
    model = _seeded(seed, lambda: Qwen2VLForConditionalGeneration(config))
    video_processor = {
        "video_processor_type": "Qwen2VLVideoProcessor",
        "patch_size": patch_size,
        "merge_size": merge_size,
        "temporal_patch_size": 2,
        "min_pixels": 32 * 32,
        "max_pixels": 64 * 64,
        "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3,
    }
    return _save_parts(
        model,
        tokenizer,
        image_processor,
        {"processor_class": "Qwen2VLProcessor", "video_processor": video_processor},
        QWEN2_VL_TEMPLATE,
        out_dir,
        [tokenizer.eos_token_id, tokenizer.pad_token_id],
    )


# --------------------------------------------------------------------------------------- LLaVA-OneVision

# After llava-hf/llava-onevision-qwen2-0.5b-ov-hf's template: "<|im_start|>user " then "<image>\n" per
# image, the text, "<|im_end|>"; generation prompt "<|im_start|>assistant\n".
LLAVA_ONEVISION_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + ' ' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] }}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
ONEVISION_PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64]]


def build_llava_onevision(out_dir: Path, seed: int = 0) -> Path:
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessorPil,
        Qwen2Config,
    )

    tokenizer = _tokenizer(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"],
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        extra={"image_token": "<image>", "video_token": "<video>"},
    )
    image_size, patch_size = 32, 8
    image_processor = LlavaOnevisionImageProcessorPil(
        size={"height": image_size, "width": image_size},
        image_grid_pinpoints=ONEVISION_PINPOINTS,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    ids = {
        "bos_token_id": None,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = LlavaOnevisionConfig(
        vision_config=_siglip(image_size, patch_size),
        text_config=Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=1024,
            **ids,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=ONEVISION_PINPOINTS,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        vision_aspect_ratio="anyres_max_9",
        **ids,
    )
    model = _seeded(seed, lambda: LlavaOnevisionForConditionalGeneration(config))
    video_processor = {
        "video_processor_type": "LlavaOnevisionVideoProcessor",
        "size": {"height": image_size, "width": image_size},
        "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3,
    }
    fields = {
        "processor_class": "LlavaOnevisionProcessor",
        "num_image_tokens": (image_size // patch_size) ** 2,
        "vision_feature_select_strategy": "full",
        "vision_aspect_ratio": "anyres_max_9",
        "image_token": "<image>",
        "video_token": "<video>",
        "video_processor": video_processor,
    }
    return _save_parts(
        model,
        tokenizer,
        image_processor,
        fields,
        LLAVA_ONEVISION_TEMPLATE,
        out_dir,
        [tokenizer.eos_token_id, tokenizer.pad_token_id],
    )


FAMILIES: dict[str, Callable[..., Path]] = {
    "gemma3": build_gemma3,
    "idefics3": build_idefics3,
    "smolvlm": build_smolvlm,
    "paligemma": build_paligemma,
    "qwen2_vl": build_qwen2_vl,
    "llava_onevision": build_llava_onevision,
}

# Packages a family's processor needs that are not evalkit dependencies: transformers 5.24 builds the video
# processors of these families (even for image-only use) only with torchvision, and SmolVLM's processor
# refuses to start without num2words (it spells out frame counts in video prompts).
EXTRA_PACKAGES: dict[str, tuple[str, ...]] = {
    "qwen2_vl": ("torchvision",),  # Qwen2VLVideoProcessor
    "llava_onevision": ("torchvision",),  # LlavaOnevisionVideoProcessor
    "smolvlm": ("torchvision", "num2words"),  # SmolVLMVideoProcessor; SmolVLMProcessor.__init__
}


def missing_packages(family: str) -> list[str]:
    """The extra packages `family` needs (EXTRA_PACKAGES) that are not installed here."""
    return [name for name in EXTRA_PACKAGES.get(family, ()) if importlib.util.find_spec(name) is None]


class NoVideoProcessor(dict):  # type: ignore[type-arg]
    """Stands in for a video processor transformers cannot build here; it only answers the attributes
    image-only paths read (SmolVLM's apply_chat_template reads num_frames and fps), and serialises as {}
    (the processor's repr writes its settings)."""

    num_frames = 8
    fps = 1


def stand_in_missing_packages(monkeypatch: Any) -> None:
    """Let a processor whose video side needs a missing package load for images only: the video processor
    becomes a `NoVideoProcessor`, and a missing num2words a plain `str`. Undone with `monkeypatch`."""
    from transformers import processing_utils
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor
    from transformers.models.smolvlm import processing_smolvlm

    if importlib.util.find_spec("torchvision") is None:
        check = processing_utils.ProcessorMixin.check_argument_for_proper_class

        def lenient(self: Any, name: str, argument: Any) -> Any:
            if name == "video_processor" and isinstance(argument, NoVideoProcessor):
                return NoVideoProcessor
            return check(self, name, argument)

        monkeypatch.setattr(processing_utils.ProcessorMixin, "check_argument_for_proper_class", lenient)
        monkeypatch.setattr(
            AutoVideoProcessor, "from_pretrained", classmethod(lambda cls, *a, **k: NoVideoProcessor())
        )
    if processing_smolvlm.num2words is None:
        monkeypatch.setattr(processing_smolvlm, "num2words", str)


def build_family(name: str, out_dir: Path, seed: int = 0) -> Path:
    return FAMILIES[name](out_dir, seed=seed)
