"""Throughput of a LLaVA-1.5-7B-sized model on an MME-shaped workload, through evalkit's runner, against the
bare `generate` loop, batch size 1 and the prefill bound. Prints figures from one run.

The model has LLaVA-1.5-7B's exact shapes (CLIP ViT-L/14-336 tower, mlp2x_gelu projector, Llama-2-7B
with a 32064-row vocabulary, <image> = 32000) and random weights, built on the device in the chosen dtype
(nothing is downloaded), saved with a tokenizer trained here, and loaded back by `HFBackend`, the path a
real checkpoint takes. `--shape key=value,...` changes any size. Its generation config sets
`min_new_tokens` = `--new-tokens`, so every sample makes exactly that many tokens (a random model may
otherwise end at EOS early and flatter the figures).

The workload: MME's 2374 yes/no questions (two per image, 1187 synthetic JPEG/PNG images of 400-800 px,
the 14 subtasks at MME's real counts, questions in MME's wording and lengths) written in the MME authors'
layout and read by the real `mme` task under protocol llava (vicuna_v1, pad, LLaVA tokenization):
55-70 text tokens (a BPE trained here to about one token a word; Llama's gives a few more) and 576
image tokens a prompt. The bound below uses the measured mean.

Figures (samples/s; peak GPU memory per phase from `torch.cuda.max_memory_allocated`):
1. runner, `--batch-size auto`: the hf backend starts at `--auto-start` and halves on CUDA out-of-memory,
   keeping the size that fits (as `evalkit run --batch-size auto` does, which starts at 64). The default
   start on CUDA, 512, cannot fit: the 7B model's KV cache alone is 512 x ~650 tokens x 0.5 MiB = ~170 GB,
   more than an H200 has, so the halving runs for real (a larger start also makes attention tensors of
   over 2^31 elements, which some kernels refuse with errors that are not out-of-memory). Prints the size
   it settled on.
2. the bare loop (`HFBackend.generate` over batches prepared before the clock starts) and the runner, both
   at the settled size; then the runner at batch size 1 on an evenly spread subset (`--bs1-samples`).
3. prefill bound: FLOPs/sample = 2 x params x tokens for each part, i.e.
   2 * (N_vision * 577 + N_projector * 576 + N_llm * (T + n - 1) + N_lm_head * n), where T = the mean
   prompt length in tokens (image tokens included, padding not), n = new tokens, N_llm = the language
   model's parameters less the input embedding (a lookup) and the LM head (applied to the last position
   only). Attention's own T^2 term (~3% here) is left out, so the bound is a little optimistic. The bound
   in samples/s is peak FLOP/s / FLOPs per sample, at the matmul rate measured here (a 8192^3 product in
   the model's dtype) and at `--peak-tflops` (default 989: H100/H200 SXM dense fp16/bf16).

Usage:
  python bench/gpu_throughput.py                      # on a CUDA GPU: the 7B model, all 2374 questions
  python bench/gpu_throughput.py --samples 512 --new-tokens 1
  python bench/gpu_throughput.py --auto-start 256     # or --batch-size 64 (fixed, no auto phase)
  python bench/gpu_throughput.py --shape text_layers=16,vision_layers=12
  python bench/gpu_throughput.py --tiny               # CPU, a tiny model, 48 questions, seconds

On a GPU box with PyTorch and transformers but no internet: here, `bash bench/gpu_box.sh wheels` downloads
evalkit's other dependencies as wheels into wheels/ (git-ignored; SKIP="..." leaves out packages the box
already has); copy the working tree with wheels/ there and run `bash bench/gpu_box.sh`, which installs
them (`pip install --no-index --find-links wheels -e .`) and runs this script under a 9-minute timeout.
Estimated 4-6 minutes on one H200 (not yet run on a GPU): model built, saved and loaded in about a minute,
then four passes over the workload.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import sys
import tempfile
import time
from dataclasses import dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import bare_loop, prepare_batches, runner, with_tokens

from evalkit.backends.hf import HFBackend
from evalkit.demo.tiny_model import CHAT_TEMPLATE, CLIP_MEAN, CLIP_STD, VICUNA_SYSTEM, llava_tokenizer
from evalkit.protocols import SHORT
from evalkit.registry import get_task
from evalkit.task import Task

# ---------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Shape:
    """LLaVA-1.5 sizes; the defaults are LLaVA-1.5-7B's (llava-hf/llava-1.5-7b-hf config.json)."""

    vision_hidden: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    vision_intermediate: int = 4096
    image_size: int = 336
    patch_size: int = 14
    text_hidden: int = 4096
    text_layers: int = 32
    text_heads: int = 32
    text_intermediate: int = 11008
    vocab_size: int = 32064
    max_positions: int = 4096

    @property
    def image_tokens(self) -> int:
        """Tokens an image stands for in the prompt (patches; the CLS token is dropped, strategy default)."""
        return (self.image_size // self.patch_size) ** 2


LLAVA_7B = Shape()
TINY = Shape(
    vision_hidden=64,
    vision_layers=2,
    vision_heads=4,
    vision_intermediate=128,
    image_size=56,
    patch_size=14,
    text_hidden=64,
    text_layers=2,
    text_heads=4,
    text_intermediate=128,
)
IMAGE_TOKEN_ID = 32000  # LLaVA-1.5-hf: <image> = 32000, <pad> = 32001, embedding padded to 32064 rows


def parse_shape(base: Shape, spec: str) -> Shape:
    """`base` with `key=value,...` overrides (keys: the Shape fields)."""
    names = {f.name for f in fields(Shape)}
    changes: dict[str, int] = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key.strip() not in names or not value.strip().isdigit():
            raise SystemExit(
                f"--shape: {item!r} is not key=integer with key one of {', '.join(sorted(names))}"
            )
        changes[key.strip()] = int(value)
    return replace(base, **changes)


def build_tokenizer(corpus: list[str]) -> Any:
    """A byte-level BPE trained on `corpus` until nearly every word is one token (about as many tokens as
    Llama's tokenizer gives English prose), its ids padded with unused entries so that <image> is 32000
    and <pad> 32001, as in LLaVA-1.5-hf; <unk> <s> </s> are 0 1 2 and BOS is added, as Llama's does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=IMAGE_TOKEN_ID,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    trained.train_from_iterator(corpus, trainer=trainer)
    vocab = trained.get_vocab()
    merges = [tuple(m) for m in json.loads(trained.to_str())["model"]["merges"]]
    vocab |= {f"<unused_{i}>": i for i in range(len(vocab), IMAGE_TOKEN_ID)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<image>", "<pad>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return llava_tokenizer(tok, model_max_length=4096)


IDS = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": IMAGE_TOKEN_ID + 1}


def llava_config(shape: Shape) -> Any:
    """LLaVA-1.5's config (llava-hf layout) at `shape`: CLIP tower (quick_gelu), mlp2x_gelu projector,
    Llama language model, features from the second-to-last tower layer with the CLS token dropped."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        hidden_size=shape.vision_hidden,
        intermediate_size=shape.vision_intermediate,
        num_hidden_layers=shape.vision_layers,
        num_attention_heads=shape.vision_heads,
        image_size=shape.image_size,
        patch_size=shape.patch_size,
        projection_dim=768,
        hidden_act="quick_gelu",
    )
    text = LlamaConfig(
        vocab_size=shape.vocab_size,
        hidden_size=shape.text_hidden,
        intermediate_size=shape.text_intermediate,
        num_hidden_layers=shape.text_layers,
        num_attention_heads=shape.text_heads,
        num_key_value_heads=shape.text_heads,
        max_position_embeddings=shape.max_positions,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        **IDS,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=IMAGE_TOKEN_ID,
        image_seq_length=shape.image_tokens,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        tie_word_embeddings=False,
        **IDS,
    )


def llava_processor(shape: Shape, corpus: list[str]) -> Any:
    """LLaVA-1.5's processor: CLIP preprocessing at the tower's size, one image = `image_tokens` tokens."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": shape.image_size},
        crop_size={"height": shape.image_size, "width": shape.image_size},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(corpus),
        patch_size=shape.patch_size,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        image_token="<image>",
        num_additional_image_tokens=1,
    )


def build_checkpoint(
    out: Path, shape: Shape, corpus: list[str], device: str, dtype: torch.dtype, new_tokens: int
) -> tuple[float, float]:
    """Random-weight LLaVA-1.5 of `shape`, built on `device` in `dtype`, saved with its processor to `out`;
    returns (build seconds, save seconds). Its generation config forces `new_tokens` tokens (no early EOS)."""
    from transformers import GenerationConfig, LlavaForConditionalGeneration

    start = time.perf_counter()
    processor = llava_processor(shape, corpus)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(llava_config(shape), dtype=dtype)
    model.generation_config = GenerationConfig(
        **IDS, do_sample=False, min_new_tokens=new_tokens, max_new_tokens=new_tokens
    )
    sync(device)
    built = time.perf_counter() - start
    start = time.perf_counter()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    saved = time.perf_counter() - start
    del model
    free(device)
    return built, saved


def parameter_counts(model: Any) -> dict[str, int]:
    """Parameters by part: vision tower, projector, language model less its input embedding, LM head."""
    inner = model.model

    def count(module: Any) -> int:
        return sum(p.numel() for p in module.parameters())

    embedding = inner.language_model.get_input_embeddings().weight.numel()
    return {
        "vision": count(inner.vision_tower),
        "projector": count(inner.multi_modal_projector),
        "llm": count(inner.language_model) - embedding,
        "embedding": embedding,
        "lm_head": count(model.lm_head),
    }


# ------------------------------------------------------------------------------------------- the workload

# MME's 14 subtasks with their real question counts (2374 in all, two per image); the first five keep
# images/ and questions_answers_YN/, the others image and txt side by side (PNG for three, as released).
SUBTASKS = {
    "artwork": 400, "celebrity": 340, "landmark": 400, "posters": 294, "scene": 400,
    "existence": 60, "count": 60, "position": 60, "color": 60, "OCR": 40,
    "commonsense_reasoning": 140, "numerical_calculation": 40, "text_translation": 40, "code_reasoning": 40,
}  # fmt: skip
NESTED = ("artwork", "celebrity", "landmark", "posters", "scene")
PNG = ("numerical_calculation", "text_translation", "code_reasoning")
# Question forms in MME's wording, one `subtask = form` a line, and `key = a|b|...` fillers for them.
FORMS_TEXT = """
existence = Is there a {obj} in this image?
existence = Is there a {obj} in the image?
count = Are there {n} {obj}s in the image?
count = Is there only one {obj} in the image?
position = Is the {obj} on the left side of the {obj}?
position = Is the {obj} under the {obj} in the image?
color = Is there a {colour} {obj} in the image?
color = Is the {obj} in the picture {colour}?
posters = Is this movie titled {title}?
posters = Is this movie directed by {name}?
celebrity = Is the actor inside the red bounding box named {name}?
celebrity = Is the person inside the red bounding box called {name}?
scene = Is this picture captured in a place of {place}?
scene = Does this image describe a place of {place}?
landmark = Is this a photo of {landmark}?
landmark = Is this a picture of {landmark}?
artwork = Does this artwork exist in the form of {form}?
artwork = Is this artwork created by {artist}?
artwork = Is this artwork titled {title}?
OCR = Is the word in the logo "{word}"?
OCR = Is the phrase "{word}" in the image?
commonsense_reasoning = Here are the order details for my taxi ride. Should I actually pay ${n}.{n}?
commonsense_reasoning = In the picture, which is more appropriate to wear, a {obj} or a coat? Is it the {obj}?
commonsense_reasoning = Is it a good idea to go out with a {colour} {obj} in the weather shown in the picture?
numerical_calculation = Is the answer to the arithmetic question in the image {n}?
numerical_calculation = Is the value of x in the image {n}?
text_translation = Is it appropriate to translate the Chinese in the image into English '{title}'?
code_reasoning = The image shows a python code. Is the output of the code '{word}'?
code_reasoning = The image shows a python code. Will the number {n} be printed out?
"""
WORDS_TEXT = """
obj = dog|cat|bus|train|clock|bench|horse|elephant|laptop|umbrella|kite|surfboard|bottle|chair
colour = red|blue|green|white|black|yellow|brown|orange|pink|purple
name = Tom Hanks|Meryl Streep|Denzel Washington|Julia Roberts|Leonardo DiCaprio|Cate Blanchett
title = The Shawshank Redemption|A River Runs Through It|Twelve Angry Men|The Night of the Hunter
title = Portrait of a Young Woman with a Pearl Necklace|The Garden of Earthly Delights
place = greenhouse indoor|bamboo forest|train station platform|ice skating rink outdoor|art gallery
landmark = Notre Dame de Paris|the Golden Gate Bridge|Hagia Sophia|Chichen Itza|Neuschwanstein Castle
artist = Fra Angelico|Rembrandt van Rijn|Claude Monet|Artemisia Gentileschi|Jan van Eyck
form = painting|sculpture|architecture|ceramics|illumination
word = STARBUCKS|Mediterranean Grill|PARKING ONLY|Bakery & Cafe|Hello
"""


def table(text: str, sep: str | None = None) -> dict[str, list[str]]:
    """`key = value` lines into {key: [values]} (each value split on `sep` when given)."""
    out: dict[str, list[str]] = {}
    for line in filter(None, text.splitlines()):
        key, _, value = line.partition(" = ")
        out.setdefault(key, []).extend(value.split(sep) if sep else [value])
    return out


FORMS, WORDS = table(FORMS_TEXT), table(WORDS_TEXT, "|")
SUFFIX = " Please answer yes or no."


@dataclass(frozen=True)
class Item:
    """One MME image and its question pair (the first answered Yes, the second No, as in MME)."""

    subtask: str
    stem: str
    questions: tuple[str, str]
    size: tuple[int, int]


def mme_items(seed: int = 0) -> list[Item]:
    """The 1187 images and 2374 questions, in the order of the release's subtask folders."""
    rng = random.Random(seed)

    def question(subtask: str) -> str:
        form = rng.choice(FORMS[subtask])
        values = {k: rng.choice(v) for k, v in WORDS.items()} | {"n": str(rng.randint(2, 99))}
        return form.format(**values) + SUFFIX

    items = []
    for subtask, count in SUBTASKS.items():
        for i in range(count // 2):
            size = (rng.randint(400, 800), rng.randint(300, 600))
            items.append(Item(subtask, f"{i:06d}", (question(subtask), question(subtask)), size))
    return items


def spread(items: list[Item], questions: int) -> list[Item]:
    """About `questions` questions (whole pairs) taken evenly across the subtasks."""
    pairs = max(1, min(len(items), math.ceil(questions / 2)))
    return [items[i * len(items) // pairs] for i in range(pairs)]


def picture(size: tuple[int, int], seed: int) -> Image.Image:
    """A smooth random picture (a coarse random grid, upscaled): compresses like a photo, costs little."""
    grid = np.random.default_rng(seed).integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(grid, "RGB").resize(size, Image.Resampling.BICUBIC)


def write_mme(root: Path, items: list[Item], shrink: int = 1) -> None:
    """`<root>/mme/MME_Benchmark_release_version/<subtask>/...` as the MME authors distribute it (images
    `shrink` times smaller than their drawn size: --tiny's CPU run need not decode photo-sized images)."""
    release = root / "mme" / "MME_Benchmark_release_version"
    for n, item in enumerate(items):
        folder = release / item.subtask
        nested = item.subtask in NESTED
        image_dir, text_dir = (
            (folder / "images", folder / "questions_answers_YN") if nested else (folder, folder)
        )
        image_dir.mkdir(parents=True, exist_ok=True)
        text_dir.mkdir(parents=True, exist_ok=True)
        size = (item.size[0] // shrink, item.size[1] // shrink)
        picture(size, n).save(image_dir / f"{item.stem}.{'png' if item.subtask in PNG else 'jpg'}")
        lines = [f"{item.questions[0]}\tYes\n", f"{item.questions[1]}\tNo\n"]
        (text_dir / f"{item.stem}.txt").write_text("".join(lines), encoding="utf-8")


def corpus(items: list[Item]) -> list[str]:
    """Text the tokenizer is trained on: the conversation template's words and every question."""
    return [VICUNA_SYSTEM, "USER: ASSISTANT:", SHORT] + [q for item in items for q in item.questions]


# ----------------------------------------------------------------------------------------- measurements


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def matmul_tflops(device: str, dtype: torch.dtype, n: int, repeats: int) -> float:
    """Achieved TFLOP/s of an n x n x n product in `dtype` (the mean of `repeats` after 3 warm-ups)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


@dataclass
class Phase:
    label: str
    rate: float  # samples/s
    seconds: float
    peak_gib: float | None  # GPU memory, None on CPU


TABLE = f"{'phase':<42}{'samples/s':>10}{'seconds':>9}{'peak GPU GiB':>14}"


def measure(label: str, device: str, run: Any) -> Phase:
    """Run `run()` (which returns samples/s), timing it and reading the peak GPU memory it used; prints the
    table row at once (figures that are in survive a timeout later on)."""
    free(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    rate = run()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    memory = f"{peak:.1f}" if peak is not None else "-"
    say(f"{label:<42}{rate:>10.2f}{seconds:>9.1f}{memory:>14}")
    return Phase(label, rate, seconds, peak)


def mean_prompt_tokens(batches: list[Any]) -> float:
    """Mean prompt length in tokens over prepared batches (image tokens counted, left padding not)."""
    masks = [b[0]["attention_mask"] for b in batches]
    return float(sum(int(m.sum()) for m in masks) / sum(m.shape[0] for m in masks))


def say(line: str) -> None:
    print(line, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model on the CPU, 48 questions")
    parser.add_argument("--samples", type=int, help="questions (whole pairs; default 2374, --tiny 48)")
    parser.add_argument("--bs1-samples", type=int, help="questions at batch size 1 (default 256, --tiny 16)")
    parser.add_argument("--new-tokens", type=int, default=4, help="tokens generated per sample, exactly")
    parser.add_argument("--batch-size", default="auto", help="'auto' (halving on CUDA OOM) or a fixed size")
    parser.add_argument("--auto-start", type=int, help="where auto starts (default 512 on CUDA, else 16)")
    parser.add_argument("--shape", default="", help="key=value,... over LLaVA-1.5-7B's sizes (see Shape)")
    parser.add_argument("--device", help="default: cuda if there is one (cpu with --tiny)")
    parser.add_argument("--dtype", help="float16|bfloat16|float32 (default: float16 on CUDA, else float32)")
    parser.add_argument("--peak-tflops", type=float, help="the device's spec peak (default 989 on CUDA)")
    parser.add_argument("--workdir", help="where model and data are written (default: a temporary folder)")
    args = parser.parse_args()
    if args.batch_size != "auto" and not (args.batch_size.isdigit() and int(args.batch_size) > 0):
        parser.error(f"--batch-size must be 'auto' or a positive integer, not {args.batch_size!r}")
    if args.new_tokens < 1:
        parser.error("--new-tokens must be at least 1")
    return args


def write_workload(
    tmp: Path, samples: int, bs1_samples: int, shrink: int
) -> tuple[list[Item], list[Item], list[Item]]:
    """Every question (for the tokenizer), and the data roots data/, data-bs1/ and data-warmup/ written."""
    items = mme_items()
    chosen = spread(items, samples)
    single = spread(chosen, bs1_samples)
    start = time.perf_counter()
    for folder, part in (("data", chosen), ("data-bs1", single), ("data-warmup", spread(chosen, 16))):
        write_mme(tmp / folder, part, shrink)
    say(
        f"workload: MME authors' layout, {questions(chosen)} questions on {len(chosen)} images in "
        f"{len({i.subtask for i in chosen})} subtasks (written in {time.perf_counter() - start:.1f} s), "
        "task mme, protocol llava"
    )
    return items, chosen, single


def questions(items: list[Item]) -> int:
    return sum(len(i.questions) for i in items)


def load_model(
    folder: Path, shape: Shape, texts: list[str], device: str, dtype_name: str, new_tokens: int
) -> HFBackend:
    """Build and save the model, then load it as evalkit does; prints what it took."""
    built, saved = build_checkpoint(folder, shape, texts, device, getattr(torch, dtype_name), new_tokens)
    size = sum(f.stat().st_size for f in folder.iterdir()) / 1e9
    start = time.perf_counter()
    backend = HFBackend(folder, dtype=dtype_name, device=device)
    loaded = time.perf_counter() - start
    c = {k: f"{v / 1e6:.1f}M" for k, v in parameter_counts(backend.model).items()}
    say(
        f"model: {sum(parameter_counts(backend.model).values()):,} parameters (vision {c['vision']}, "
        f"projector {c['projector']}, language {c['llm']} + embedding {c['embedding']} + LM head "
        f"{c['lm_head']}); built in {built:.1f} s, saved ({size:.2f} GB) in {saved:.1f} s, "
        f"loaded by HFBackend in {loaded:.1f} s"
    )
    return backend


def auto_phase(backend: HFBackend, task: Task, tmp: Path, device: str, start_size: int) -> tuple[Phase, int]:
    """The runner with the hf backend's out-of-memory halving from `start_size`; the size it settled on."""
    backend.max_rows = None
    phase = measure(
        f"runner, --batch-size auto (start {start_size})",
        device,
        partial(runner, backend, task, tmp / "data", start_size, tmp / "out", name="auto"),
    )
    size = backend.max_rows or start_size
    halvings = (start_size // size).bit_length() - 1
    why = "on CUDA out-of-memory" if halvings else "(no out-of-memory)"
    say(f"batch size auto: started at {start_size}, settled at {size} after {halvings} halving(s) {why}")
    return phase, size


def fixed_phases(
    backend: HFBackend, task: Task, tmp: Path, device: str, size: int, single: int
) -> tuple[list[Phase], float]:
    """The bare loop and the runner at `size`, the runner at batch size 1; the mean prompt length."""
    backend.max_rows = None
    batches = prepare_batches(backend, task, tmp / "data", size)
    prompt = mean_prompt_tokens(batches)
    bare = measure(f"bare generate loop, batch {size}", device, partial(bare_loop, backend, batches))
    del batches
    backend.max_rows = None
    ours = measure(
        f"runner, batch {size}",
        device,
        partial(runner, backend, task, tmp / "data", size, tmp / "out", name="fixed"),
    )
    one = measure(
        f"runner, batch 1 ({single} samples)",
        device,
        partial(runner, backend, task, tmp / "data-bs1", 1, tmp / "out", name="bs1"),
    )
    return [bare, ours, one], prompt


def main() -> None:
    args = parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    cuda = device.startswith("cuda")
    if device == "cuda":
        device = f"cuda:{torch.cuda.current_device()}"
    dtype_name = args.dtype or ("float16" if cuda else "float32")
    shape = parse_shape(TINY if args.tiny else LLAVA_7B, args.shape)
    samples = args.samples or (48 if args.tiny else 2374)
    bs1_samples = args.bs1_samples or min(samples, 16 if args.tiny else 256)
    start_size = args.auto_start or (512 if cuda else 16)
    peak = args.peak_tflops or (989.0 if cuda else None)
    import transformers

    what = "tiny" if shape == TINY else "LLaVA-1.5-7B" if shape == LLAVA_7B else "custom LLaVA-1.5"
    say(
        f"gpu_throughput: {what} shapes, random weights, {dtype_name} on {device} "
        f"({torch.cuda.get_device_name(device) if cuda else 'CPU'}), torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="evalkit-bench-") as tmp_name:
        tmp = Path(tmp_name)
        items, _, single = write_workload(tmp, samples, bs1_samples, 8 if args.tiny else 1)
        backend = load_model(tmp / "model", shape, corpus(items), device, dtype_name, args.new_tokens)
        n = 8192 if cuda else 512
        tflops = matmul_tflops(device, getattr(torch, dtype_name), n, repeats=50 if cuda else 5)
        spec = f"spec peak {peak:.1f} TFLOP/s (--peak-tflops)" if peak else "no spec peak (--peak-tflops)"
        say(f"matmul: {tflops:.3g} TFLOP/s measured ({n}^3 {dtype_name}); {spec}")
        task = with_tokens(get_task("mme"), "llava", args.new_tokens)
        runner(backend, task, tmp / "data-warmup", 8, tmp / "out", name="warmup")  # first-call costs
        phases: list[Phase] = []
        say(TABLE)
        size = int(args.batch_size) if args.batch_size != "auto" else 0
        if not size:
            auto, size = auto_phase(backend, task, tmp, device, start_size)
            phases.append(auto)
        fixed, prompt = fixed_phases(backend, task, tmp, device, size, questions(single))
        phases += fixed
        counts = parameter_counts(backend.model)
    report(phases, counts, shape, prompt, args.new_tokens, tflops, peak)


def report(
    phases: list[Phase],
    counts: dict[str, int],
    shape: Shape,
    prompt: float,
    new_tokens: int,
    tflops: float,
    peak: float | None,
) -> None:
    """The ratios and the prefill bound."""
    bare, ours, one = (p.rate for p in phases[-3:])
    auto = f", auto/fixed runner {phases[0].rate / ours:.2f}" if len(phases) == 4 else ""
    say(f"ratios: runner/bare {ours / bare:.2f}, runner/bs1 {ours / one:.2f}{auto}")
    flops = 2 * (
        counts["vision"] * (shape.image_tokens + 1)
        + counts["projector"] * shape.image_tokens
        + counts["llm"] * (prompt + new_tokens - 1)
        + counts["lm_head"] * new_tokens
    )
    bound = tflops * 1e12 / flops
    spec = f", {peak * 1e12 / flops:.4g} at the spec peak" if peak else ""
    of_spec = f", {ours / (peak * 1e12 / flops):.2f} of the spec bound" if peak else ""
    say(
        f"prefill bound: 2*(N_vision*{shape.image_tokens + 1} + N_projector*{shape.image_tokens} "
        f"+ N_llm*(T+n-1) + N_head*n) = {flops / 1e12:.3g} TFLOP/sample (T={prompt:.1f} prompt tokens, "
        f"n={new_tokens}): {bound:.4g} samples/s at the measured matmul rate{spec}; runner at "
        f"{ours / bound:.2f} of the measured bound{of_spec}"
    )


if __name__ == "__main__":
    main()
