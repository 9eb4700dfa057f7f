"""Backends turn batches of (images, prompt) requests into texts with greedy decoding."""

from evalkit.backends.base import Backend, Failure, Request

__all__ = ["Backend", "Failure", "Request"]
