"""Data parallelism under `torchrun`: ranks take disjoint shards of the pending samples, rank 0 merges
and scores. Without torchrun (WORLD_SIZE unset or 1) everything runs in the one process.

NCCL on GPUs (each rank on `cuda:LOCAL_RANK`), gloo on CPU (how the tests run it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list[T]) -> list[T]:
        """This rank's share: every size-th item starting at its rank (the same list on every rank)."""
        return items[self.rank :: self.size]

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()

    def on_main(self, action: Callable[[], object]) -> None:
        """Run `action` on rank 0 alone; an evalkit error there is raised on every rank, so no rank is left
        waiting at a barrier for one that stopped."""
        if self.size == 1:
            action()
            return
        from evalkit import errors

        message: str | None = None
        if self.is_main:
            try:
                action()
            except errors.EvalkitError as exc:
                message = f"{type(exc).__name__}:{exc}"
        message = self.broadcast_text(message)
        if message is not None:
            kind, _, text = message.partition(":")
            raise getattr(errors, kind, errors.ConfigError)(text)

    def broadcast_text(self, value: str | None) -> str | None:
        """Rank 0's text (or None) on every rank, sent as UTF-8 bytes in a tensor (no pickling)."""
        if self.size == 1:
            return value
        import torch
        import torch.distributed as dist

        data = value.encode("utf-8") if value is not None else b""
        device = f"cuda:{self.local_rank}" if dist.get_backend() == "nccl" else "cpu"
        size = torch.tensor([len(data) if value is not None else -1], device=device)
        dist.broadcast(size, src=0)
        n = int(size.item())
        if n < 0:
            return None
        buffer = torch.zeros(n, dtype=torch.uint8, device=device)
        if self.is_main and n:
            buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        dist.broadcast(buffer, src=0)
        return bytes(buffer.cpu().tolist()).decode("utf-8")

    def close(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


SINGLE = World()


def init_world() -> World:
    """The process group torchrun describes in the environment, or a single-process world."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        # long timeout: ranks meet at task ends, and one rank's shard may take hours longer than another's
        dist.init_process_group(
            backend="nccl" if torch.cuda.is_available() else "gloo", timeout=timedelta(hours=24)
        )
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank)
