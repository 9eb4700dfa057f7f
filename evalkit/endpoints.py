"""Helpers for talking to OpenAI-compatible endpoints, shared by the openai backend and the judge:
keeping secrets out of messages and records, the statuses that mean a setting is wrong, a check that the
endpoint is there at all, a total deadline per request, and reading a reply that may not be one."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel

from evalkit.errors import ConfigError

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


def _httpx() -> Any:
    """The HTTP library the installed openai SDK is built on (`httpx2` in newer releases, `httpx` before)."""
    try:
        import httpx2

        return httpx2
    except ImportError:  # openai < 3 uses httpx
        import httpx

        return httpx


PHASES = ("connect", "read", "write", "pool")  # httpx's timeout phases


DEADLINE = "evalkit_deadline"  # request extension: when the request must be complete (time.monotonic())


def http_client(total_timeout: float, event_hooks: dict[str, list[Any]] | None = None, **kwargs: Any) -> Any:
    """An SDK HTTP client whose every request (one attempt; the SDK retries it as a new one) is complete
    within `total_timeout` seconds, even against a server that trickles its reply a byte at a time, which
    per-read timeouts never stop. Done with event hooks, so the environment's proxy settings still apply:
    each phase may take the total; once the headers are in, reads get only the time left, and the body is
    cut when the deadline passes between chunks."""
    import openai

    httpx = _httpx()

    class DeadlineStream(httpx.SyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, stream: Any, deadline: float, request: Any) -> None:
            self._stream, self._deadline, self._request = stream, deadline, request

        def __iter__(self) -> Any:
            for chunk in self._stream:
                if time.monotonic() > self._deadline:
                    raise httpx.ReadTimeout(
                        f"no complete reply within {total_timeout:g} s", request=self._request
                    )
                yield chunk

        def close(self) -> None:
            self._stream.close()

    def start(request: Any) -> None:
        request.extensions[DEADLINE] = time.monotonic() + total_timeout
        timeouts = dict(request.extensions.get("timeout") or dict.fromkeys(PHASES))
        request.extensions["timeout"] = {
            key: total_timeout if value is None else min(value, total_timeout)
            for key, value in timeouts.items()
        }

    def headers_in(response: Any) -> None:
        request = response.request
        deadline = request.extensions.get(DEADLINE)
        if deadline is None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            response.close()
            raise httpx.ReadTimeout(f"no reply within {total_timeout:g} s", request=request)
        request.extensions["timeout"]["read"] = left  # the body's reads: only the time that is left
        response.stream = DeadlineStream(response.stream, deadline, request)

    hooks = dict(event_hooks or {})
    hooks["request"] = [start, *hooks.get("request", [])]
    hooks["response"] = [headers_in, *hooks.get("response", [])]
    return openai.DefaultHttpxClient(event_hooks=hooks, **kwargs)


def completion_text(response: Any) -> tuple[str | None, str | None]:
    """(the reply text, None), or (None, why) when an HTTP 200 answer is no chat completion (an HTML page
    from a proxy, a body without choices, choices that are not messages)."""
    try:
        choices = getattr(response, "choices", None) if isinstance(response, BaseModel) else None
        if not isinstance(choices, list):
            shown = " ".join(str(response).split())[:80]
            return None, f"the endpoint's answer is not a chat completion: {shown!r}"
        if not choices:
            return None, "the endpoint returned no choices"
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:  # an SDK model over odd JSON
        return None, f"the endpoint's answer is not a chat completion ({type(exc).__name__})"
    if not isinstance(message, BaseModel) or not (content is None or isinstance(content, str)):
        return None, f"the endpoint's answer is not a chat completion (its first choice: {choices[0]!r:.80})"
    return content or "", None


BAD_BODY = (ValueError,)  # JSONDecodeError, UnicodeDecodeError: an HTTP 200 body that is not JSON text


def check_reachable(client: Any, what: str, url: str, secret: str | None, timeout: float = 10.0) -> None:
    """Stop before any work when nothing answers at `url` (refused connection, unknown host) or the key is
    refused; any other answer, even an error status, shows a server is there."""
    import openai

    try:
        client.with_options(max_retries=1, timeout=timeout).models.list()
    except openai.APITimeoutError:
        return  # something is listening; slow requests are handled per request
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(scrub(f"cannot reach the {what} at {public_url(url)}: {cause}", secret)) from None
    except openai.APIStatusError as exc:
        if exc.status_code in (401, 403):
            raise ConfigError(
                scrub(f"the {what} at {public_url(url)} refused the API key (HTTP {exc.status_code})", secret)
            ) from None
    except Exception:  # an answer of some kind (not a list of models): a server is there
        return
