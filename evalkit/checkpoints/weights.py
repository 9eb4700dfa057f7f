"""A checkpoint's tensors by name, from safetensors or PyTorch `.bin` shards (with or without an index).

`.bin` shards are read with `torch.load(weights_only=True)`: tensors only, no code from the file runs.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.checkpoints.detect import read_json, weight_file
from evalkit.errors import InputError

if TYPE_CHECKING:
    import torch

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")  # PEFT adapters


def shard_files(folder: Path) -> list[Path]:
    """The weight files of a folder, in index order; an index naming a missing shard is an error."""
    found = weight_file(folder) or next(
        (folder / n for n in ("adapter_model.safetensors", "adapter_model.bin") if (folder / n).is_file()),
        None,
    )
    if found is None:
        raise InputError(f"{folder}: no weight files")
    if not found.name.endswith(".index.json"):
        return [found]
    index = read_json(found)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise InputError(f"{found}: no weight_map")
    files = [folder / name for name in dict.fromkeys(weight_map.values())]
    for file in files:
        if not file.is_file():
            raise InputError(f"{found}: names shard {file.name}, which is not in {folder}")
    return files


def read_tensors(folder: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """Every (name, tensor) of the folder's weights, shard by shard."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    for file in shard_files(folder):
        try:
            if file.suffix == ".safetensors":
                tensors = load_file(file)
            else:
                tensors = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except (SafetensorError, RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
            raise InputError(f"{file}: unreadable weights ({str(exc).splitlines()[0]})") from None
        if not isinstance(tensors, dict):
            raise InputError(f"{file}: not a state dict of tensors")
        yield from tensors.items()


def load_state(folder: Path) -> dict[str, torch.Tensor]:
    return dict(read_tensors(folder))
