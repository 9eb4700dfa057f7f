"""The LLM judge: one cached, retried, concurrent client for every judged task.

Any OpenAI-compatible chat endpoint through the `openai` SDK, which retries 429/5xx/timeouts with
exponential backoff. 401/403/404 stop at once with a `ConfigError`; any other failure becomes a
`JudgeReply` with an `error` (never cached). Replies are cached on disk, one small JSON file per
(judge model, messages, temperature, max_tokens), so re-scoring the same predictions makes no call.
The API key never reaches a cache file, an error text or `describe()`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from evalkit.endpoints import (
    BAD_BODY,
    FATAL_STATUS,
    check_reachable,
    completion_text,
    http_client,
    public_url,
    scrub,
)
from evalkit.errors import ConfigError

REJECTED_STATUS = {400, 413, 422}  # the endpoint refuses this request (too long, bad parameters): final

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.openai.com/v1"  # the SDK's own default, for hosted judges like gpt-4o
CACHE_VERSION = 1  # part of every cache key: bump when the meaning of a cached entry changes


def default_cache_dir() -> Path:
    """`$EVALKIT_CACHE/judge`, else `~/.cache/evalkit/judge`."""
    root = os.environ.get("EVALKIT_CACHE")
    return Path(root) / "judge" if root else Path.home() / ".cache" / "evalkit" / "judge"


@dataclass(frozen=True)
class JudgeConfig:
    """Which judge to ask and how; `describe()` is what metrics.json records."""

    model: str
    base_url: str | None = None  # else $OPENAI_BASE_URL, else the hosted OpenAI API
    api_key_env: str = "OPENAI_API_KEY"  # a missing key is fine for local servers
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 5
    cache_dir: Path | None = None  # else default_cache_dir()
    price_per_1k_input: float | None = None  # USD; both prices set -> cost estimated
    price_per_1k_output: float | None = None

    def resolved_base_url(self) -> str:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir is not None else default_cache_dir()

    def describe(self) -> dict[str, Any]:
        """The judge settings for metrics.json (no key, no credentials in the URL)."""
        return {
            "model": self.model,
            "base_url": public_url(self.resolved_base_url()),
            "concurrency": self.concurrency,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
        }


@dataclass(frozen=True)
class JudgeRequest:
    """One chat request to the judge."""

    messages: list[dict[str, Any]]
    temperature: float = 0.0
    max_tokens: int = 1024


@dataclass(frozen=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class JudgeReply:
    """The judge's text, or `error` (the scrubbed reason) when the request failed after retries; `final`
    when the endpoint rejected this very request (HTTP 400/413/422: asking again cannot help)."""

    text: str | None
    error: str | None = None
    cached: bool = False
    final: bool = False
    usage: TokenUsage = field(default_factory=TokenUsage)

    @property
    def ok(self) -> bool:
        return self.text is not None


@dataclass(frozen=True)
class JudgeUsage:
    """Totals over a Judge's life. Tokens count only calls made (not cache hits)."""

    calls: int  # requests sent to the endpoint (each may include SDK retries)
    cache_hits: int
    failures: int  # calls that ended as error replies
    retries: int  # extra HTTP attempts made by the SDK's retries
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None unless both prices are configured

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cache_key(model: str, request: JudgeRequest) -> str:
    """sha256 of the canonical JSON of (cache version, judge model, messages, temperature, max_tokens)."""
    return hashlib.sha256(_canonical(_key_fields(model, request)).encode("utf-8")).hexdigest()


def _key_fields(model: str, request: JudgeRequest) -> dict[str, Any]:
    return {
        "version": CACHE_VERSION,
        "model": model,
        "messages": request.messages,
        "temperature": float(request.temperature),
        "max_tokens": int(request.max_tokens),
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Judge:
    """Ask an OpenAI-compatible judge, with bounded concurrency, retries and an on-disk cache."""

    def __init__(self, config: JudgeConfig) -> None:
        import openai

        self.config = config
        self.model = config.model
        self.concurrency = max(1, config.concurrency)
        self.cache_dir = config.resolved_cache_dir()
        self._secret = os.environ.get(config.api_key_env) or None
        self._checked = False  # preflight() done
        self._lock = threading.Lock()
        self._calls = self._cache_hits = self._failures = self._attempts = 0
        self._prompt_tokens = self._completion_tokens = 0
        self.client = openai.OpenAI(
            api_key=self._secret or "EMPTY",  # local servers accept any key
            base_url=config.resolved_base_url(),
            timeout=config.timeout,
            max_retries=config.max_retries,
            http_client=http_client(config.timeout, event_hooks={"request": [self._count_attempt]}),
        )

    def preflight(self) -> None:
        """Stop before any work when the judge cannot be used: no API key for the hosted OpenAI API, nothing
        answering at its endpoint, or its key refused. Also done before the first request that the cache
        cannot answer, so re-scoring from the cache needs no endpoint at all."""
        self._checked = True
        url = self.config.resolved_base_url()
        if self._secret is None and urlsplit(url).hostname == urlsplit(DEFAULT_BASE_URL).hostname:
            raise ConfigError(
                f"the judge {self.model} is asked at {url} but ${self.config.api_key_env} is not set: set "
                "it, or give --judge-base-url for a local OpenAI-compatible server"
            )
        check_reachable(self.client, "judge endpoint", url, self._secret)

    # ----------------------------------------------------------------- public

    def ask(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        """One reply per request, in input order; cached replies make no call."""
        replies: list[JudgeReply | None] = [None] * len(requests)
        pending: dict[str, list[int]] = {}  # cache key -> indices (identical requests are asked once)
        for index, request in enumerate(requests):
            key = cache_key(self.model, request)
            if key in pending:
                pending[key].append(index)
                continue
            hit = self._cache_get(key)
            if hit is not None:
                replies[index] = hit
                with self._lock:
                    self._cache_hits += 1
            else:
                pending[key] = [index]
        if pending and not self._checked:
            self.preflight()
        if pending:
            pool = ThreadPoolExecutor(
                max_workers=min(self.concurrency, len(pending)), thread_name_prefix="evalkit-judge"
            )
            try:
                futures: dict[Future[JudgeReply], list[int]] = {
                    pool.submit(self._call, key, requests[indices[0]]): indices
                    for key, indices in pending.items()
                }
                for future in as_completed(futures):  # a ConfigError surfaces as soon as it happens
                    reply = future.result()
                    first, *duplicates = futures[future]
                    replies[first] = reply
                    for index in duplicates:
                        replies[index] = replace(reply, cached=True) if reply.ok else reply
                        if reply.ok:
                            with self._lock:
                                self._cache_hits += 1
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
        return cast(list[JudgeReply], replies)  # every index was filled above

    def ask_one(self, request: JudgeRequest) -> JudgeReply:
        return self.ask([request])[0]

    def usage(self) -> JudgeUsage:
        """Totals so far: calls, cache hits, failures, retries, tokens and the estimated cost."""
        cfg = self.config
        with self._lock:
            cost = None
            if cfg.price_per_1k_input is not None and cfg.price_per_1k_output is not None:
                cost = (
                    self._prompt_tokens * cfg.price_per_1k_input
                    + self._completion_tokens * cfg.price_per_1k_output
                ) / 1000
            return JudgeUsage(
                calls=self._calls,
                cache_hits=self._cache_hits,
                failures=self._failures,
                retries=max(0, self._attempts - self._calls),
                prompt_tokens=self._prompt_tokens,
                completion_tokens=self._completion_tokens,
                cost_usd=cost,
            )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- the call

    def _count_attempt(self, request: Any) -> None:
        if not str(request.url.path).endswith("/chat/completions"):
            return  # the endpoint check (GET /models) is no grading attempt
        with self._lock:
            self._attempts += 1

    def _call(self, key: str, request: JudgeRequest) -> JudgeReply:
        reply = self._request(request)
        with self._lock:
            self._calls += 1
            if reply.ok:
                self._prompt_tokens += reply.usage.prompt_tokens
                self._completion_tokens += reply.usage.completion_tokens
            else:
                self._failures += 1
        if reply.ok:
            self._cache_put(key, request, reply)
        return reply

    def _request(self, request: JudgeRequest) -> JudgeReply:
        import openai

        retries = self.config.max_retries
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=request.messages,  # type: ignore[arg-type]
                temperature=request.temperature,
                max_tokens=request.max_tokens,
            )
        except openai.APIStatusError as exc:
            if exc.status_code in FATAL_STATUS:  # every request would fail the same way: stop
                hint = f" (${self.config.api_key_env})" if exc.status_code == 401 else ""
                raise ConfigError(
                    self._scrub(
                        f"judge endpoint answered HTTP {exc.status_code}, "
                        f"{FATAL_STATUS[exc.status_code]}{hint}: {exc.message}"
                    )
                ) from None
            final = exc.status_code in REJECTED_STATUS
            return self._failed(f"HTTP {exc.status_code} from judge endpoint: {exc.message}", final=final)
        except openai.APITimeoutError:
            return self._failed(f"judge request timed out (after {retries} retries)")
        except openai.APIConnectionError as exc:
            return self._failed(f"judge connection error (after {retries} retries): {exc}")
        except BAD_BODY as exc:  # an HTTP 200 body that is not JSON text
            return self._failed(f"the judge endpoint answered with a body that is not JSON text ({exc})")
        text, problem = completion_text(response)
        if problem is not None:
            return self._failed(problem)
        usage = getattr(response, "usage", None)
        return JudgeReply(
            text=text or "",
            usage=TokenUsage(
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            ),
        )

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secret)

    def _failed(self, reason: str, final: bool = False) -> JudgeReply:
        return JudgeReply(text=None, error=self._scrub(reason), final=final)

    # ----------------------------------------------------------------- the cache

    def cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def _cache_get(self, key: str) -> JudgeReply | None:
        """The cached reply, or None on a miss (a missing, unreadable or corrupt file)."""
        try:
            entry = json.loads(self.cache_path(key).read_text(encoding="utf-8"))
            fields = {
                name: entry[name] for name in ("version", "model", "messages", "temperature", "max_tokens")
            }
            text, usage = entry["text"], entry["usage"]
            prompt_tokens, completion_tokens = usage["prompt_tokens"], usage["completion_tokens"]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if hashlib.sha256(_canonical(fields).encode("utf-8")).hexdigest() != key or not isinstance(text, str):
            return None
        if not all(isinstance(n, int) and n >= 0 for n in (prompt_tokens, completion_tokens)):
            return None
        return JudgeReply(text=text, cached=True, usage=TokenUsage(prompt_tokens, completion_tokens))

    def _cache_put(self, key: str, request: JudgeRequest, reply: JudgeReply) -> None:
        """Write one entry atomically (tmp file + os.replace); a failure only costs a later call."""
        entry = {**_key_fields(self.model, request), "text": reply.text, "usage": asdict(reply.usage)}
        path = self.cache_path(key)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, ensure_ascii=False, sort_keys=True)
            os.replace(tmp, path)
        except (OSError, TypeError, ValueError) as exc:
            log.warning("judge cache: could not write %s: %s", path, exc)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def ask_until_all(
    judge: Judge, requests: Sequence[JudgeRequest], parse: Callable[[str], T | None], tries: int = 5
) -> list[tuple[T | None, list[JudgeReply], int]]:
    """`ask_until` for many requests at once: each round asks every unparsed request concurrently."""
    results: list[tuple[T | None, list[JudgeReply]]] = [(None, []) for _ in requests]
    todo = list(range(len(requests)))
    for attempt in range(max(1, tries)):
        if not todo:
            break
        temperature = 0.5 * attempt
        replies = judge.ask([replace(requests[i], temperature=temperature) for i in todo])
        still: list[int] = []
        for index, reply in zip(todo, replies, strict=True):
            history = [*results[index][1], reply]
            value = parse(reply.text) if reply.text is not None else None
            results[index] = (value, history)
            if value is None and reply.ok:  # an error reply already went through the SDK's retries
                still.append(index)
        todo = still
    return [(value, history, len(history)) for value, history in results]


def ask_until(
    judge: Judge, request: JudgeRequest, parse: Callable[[str], T | None], tries: int = 5
) -> tuple[T | None, list[JudgeReply], int]:
    """Ask at temperature 0, then at 0.5*i (i = 1..tries-1) while `parse(text)` returns None.

    Returns (the parsed value or None, every reply in order, the number of tries). An error reply
    ends the tries (the SDK has already retried it).
    """
    return ask_until_all(judge, [request], parse, tries)[0]


def grader_text(name: str, packaged: str, env: str, placeholders: tuple[str, ...] = ()) -> str:
    """A grader prompt kept as data: the file named by `$env` if set, else the packaged one (a path inside the
    evalkit package); it must be readable, non-empty and hold each `{placeholder}`."""
    from importlib.resources import files

    custom = os.environ.get(env)
    source = Path(custom).expanduser() if custom else files("evalkit").joinpath(packaged)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name} {source}: cannot read it as UTF-8 text ({exc})") from exc
    if not text.strip():
        raise ConfigError(f"{name} {source}: the file is empty")
    if missing := [p for p in placeholders if "{" + p + "}" not in text]:
        named = ", ".join("{" + p + "}" for p in missing)
        raise ConfigError(f"{name} {source}: placeholder(s) {named} missing")
    return text


def fill(template: str, values: dict[str, str]) -> str:
    """`template` with its `{name}` placeholders replaced in one pass; other braces (JSON, code in a user's
    prompt file or in the values) stay as they are."""
    import re

    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)
