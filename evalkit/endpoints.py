"""Helpers for talking to OpenAI-compatible endpoints, shared by the openai backend and the judge:
keeping secrets out of messages and records, and the statuses that mean a setting is wrong."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

# Statuses that every request would get again: stop at once and say what to fix.
FATAL_STATUS = {401: "unauthorised (check the API key)", 403: "forbidden", 404: "model or endpoint not found"}


def scrub(text: str, secret: str | None) -> str:
    """`text` with the secret (an API key) replaced, for messages, errors and records."""
    return text.replace(secret, "***") if secret else text


def public_url(url: str) -> str:
    """The endpoint URL without user:password or query parameters (which may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
