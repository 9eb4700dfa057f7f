"""The LLM judge against a real OpenAI-compatible server on 127.0.0.1: order, concurrency, retries,
fatal statuses, timeouts, the on-disk cache, usage and cost, ask_until, and that the key never leaks."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.errors import ConfigError
from evalkit.scoring.judge import (
    Judge,
    JudgeConfig,
    JudgeReply,
    JudgeRequest,
    TokenUsage,
    ask_until,
    ask_until_all,
    cache_key,
    default_cache_dir,
)
from tests.support.openai_server import FakeOpenAIServer, last_user_text, prompt_contains

KEY_ENV = "EVALKIT_TEST_JUDGE_KEY"
SECRET = "sk-judge-secret-0123456789abcdef"


def user(text: str, system: str | None = None) -> JudgeRequest:
    messages = [{"role": "system", "content": system}] if system else []
    return JudgeRequest(messages=[*messages, {"role": "user", "content": text}])


def echo(body: dict[str, Any]) -> str:
    return "re: " + last_user_text(body)


def cache_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


class EchoAuthServer(FakeOpenAIServer):
    """Puts the request's Authorization header into every injected error message."""

    def _respond(self, handler: Any, body: Any, headers: Any, fault: Any, parse_error: str) -> None:
        if fault is not None and fault.kind == "error":
            fault = dataclasses.replace(fault, message=f"rejected {headers.get('authorization')}")
        super()._respond(handler, body, headers, fault, parse_error)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply=echo) as srv:
        yield srv


@pytest.fixture
def make_judge(tmp_path: Path) -> Iterator[Any]:
    judges: list[Judge] = []

    def make(srv: FakeOpenAIServer, model: str = "judge-a", **kwargs: Any) -> Judge:
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        kwargs.setdefault("max_retries", 2)
        judge = Judge(JudgeConfig(model=model, base_url=srv.base_url, **kwargs))
        judges.append(judge)
        return judge

    yield make
    for judge in judges:
        judge.close()


# --------------------------------------------------------------------------- order and concurrency


def test_replies_keep_input_order_with_bounded_concurrency(server, make_judge) -> None:
    server.latency = 0.15
    judge = make_judge(server, concurrency=4)
    texts = [f"question {i}" for i in range(12)]
    started = time.monotonic()
    replies = judge.ask([user(t) for t in texts])
    elapsed = time.monotonic() - started
    assert [r.text for r in replies] == [f"re: {t}" for t in texts]
    assert all(r.ok and r.error is None and not r.cached for r in replies)
    assert server.calls == 12
    assert 2 <= server.max_in_flight <= 4
    assert elapsed < 12 * 0.15  # ran side by side, not one after another
    for body in server.bodies:
        assert body["model"] == "judge-a"
        assert body["temperature"] == 0.0
        assert body["max_tokens"] == 1024
    assert judge.ask([]) == []


def test_identical_requests_in_one_ask_make_one_call(server, make_judge) -> None:
    judge = make_judge(server)
    replies = judge.ask([user("same"), user("other"), user("same")])
    assert [r.text for r in replies] == ["re: same", "re: other", "re: same"]
    assert server.calls == 2
    assert [r.cached for r in replies] == [False, False, True]
    assert judge.usage().calls == 2 and judge.usage().cache_hits == 1


def test_missing_key_is_sent_as_empty_for_local_servers(server, make_judge, monkeypatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    judge = make_judge(server, api_key_env=KEY_ENV)
    assert judge.ask_one(user("hi")).text == "re: hi"
    assert server.requests[-1]["headers"]["authorization"] == "Bearer EMPTY"


# --------------------------------------------------------------------------- retries and failures


def test_429_is_retried_then_succeeds(server, make_judge) -> None:
    judge = make_judge(server)
    server.fail_next(status=429)
    (reply,) = judge.ask([user("rate limited")])
    assert reply.text == "re: rate limited"
    assert server.calls == 2
    usage = judge.usage()
    assert (usage.calls, usage.retries, usage.failures) == (1, 1, 0)


def test_500_exhausting_retries_is_an_error_reply_never_cached(server, make_judge, tmp_path) -> None:
    judge = make_judge(server, max_retries=2)
    server.fail_when(prompt_contains("broken"), status=500, times=None)
    good, bad = judge.ask([user("fine"), user("broken")])
    assert good.text == "re: fine"
    assert bad.text is None and not bad.ok and not bad.cached
    assert bad.error is not None and "500" in bad.error
    assert server.calls == 1 + 3  # the bad one: first try + 2 retries
    assert len(cache_files(tmp_path / "cache")) == 1  # only the good reply
    assert not judge.cache_path(cache_key("judge-a", user("broken"))).exists()
    usage = judge.usage()
    assert (usage.calls, usage.failures, usage.retries) == (2, 1, 2)

    server.clear_faults()  # the endpoint recovers: the failure was not cached, so it is asked again
    good, bad = judge.ask([user("fine"), user("broken")])
    assert good.cached and good.text == "re: fine"
    assert not bad.cached and bad.text == "re: broken"
    assert server.calls == 5


@pytest.mark.parametrize("status", [401, 403, 404])
def test_fatal_status_raises_config_error_at_once(server, make_judge, status) -> None:
    judge = make_judge(server, max_retries=3)
    server.fail_next(status=status)
    with pytest.raises(ConfigError, match=str(status)):
        judge.ask([user("anything")])
    assert server.calls == 1  # not retried


def test_wrong_key_stops_a_concurrent_batch(make_judge, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with FakeOpenAIServer(reply=echo, api_key="sk-right") as srv:
        judge = make_judge(srv, api_key_env=KEY_ENV, concurrency=2)
        with pytest.raises(ConfigError, match=rf"401.*\${KEY_ENV}"):
            judge.ask([user(f"q{i}") for i in range(20)])
        assert srv.calls < 20  # queued requests were cancelled


def test_stalled_request_times_out_as_error_reply(server, make_judge, tmp_path) -> None:
    judge = make_judge(server, timeout=0.3, max_retries=1)
    server.stall_when(prompt_contains("slow"), seconds=20, times=None)
    started = time.monotonic()
    fast, slow = judge.ask([user("quick"), user("slow one")])
    assert time.monotonic() - started < 5
    assert fast.text == "re: quick"
    assert slow.text is None and slow.error is not None and "timed out" in slow.error
    assert server.calls == 1 + 2  # the stalled one was retried once
    assert len(cache_files(tmp_path / "cache")) == 1


# --------------------------------------------------------------------------- the cache


def test_cache_makes_no_call_on_second_ask(server, make_judge, tmp_path) -> None:
    judge = make_judge(server)
    requests = [user("alpha"), user("beta", system="be strict")]
    first = judge.ask(requests)
    assert server.calls == 2
    second = make_judge(server).ask(requests)  # a fresh Judge reads the same files
    assert server.calls == 2
    assert [r.text for r in second] == [r.text for r in first]
    assert all(r.cached for r in second) and all(
        r.usage == f.usage for r, f in zip(second, first, strict=True)
    )

    key = cache_key("judge-a", requests[1])
    path = tmp_path / "cache" / key[:2] / f"{key}.json"
    assert path == judge.cache_path(key) and path.is_file()
    entry = json.loads(path.read_text())
    assert entry["model"] == "judge-a" and entry["messages"] == requests[1].messages
    assert entry["temperature"] == 0.0 and entry["max_tokens"] == 1024
    assert entry["text"] == "re: beta"
    assert set(entry["usage"]) == {"prompt_tokens", "completion_tokens"}
    assert not [p for p in cache_files(tmp_path / "cache") if p.suffix != ".json"]  # no tmp files left


def test_cache_key_covers_model_temperature_and_max_tokens(server, make_judge) -> None:
    judge = make_judge(server)
    judge.ask([user("same prompt")])
    judge.ask([dataclasses.replace(user("same prompt"), temperature=0.5)])
    assert server.calls == 2
    judge.ask([dataclasses.replace(user("same prompt"), max_tokens=16)])
    assert server.calls == 3
    (other,) = make_judge(server, model="judge-b").ask([user("same prompt")])
    assert server.calls == 4 and not other.cached
    assert server.bodies[-1]["model"] == "judge-b"
    assert judge.ask_one(user("same prompt")).cached and server.calls == 4
    # 0 and 0.0 are the same temperature
    assert cache_key("m", dataclasses.replace(user("x"), temperature=0)) == cache_key("m", user("x"))


@pytest.mark.parametrize(
    "corrupt",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"text": "stale"}',
        "other entry",  # a valid entry of another request, copied under this key
    ],
)
def test_corrupt_cache_file_is_a_miss_and_is_overwritten(server, make_judge, corrupt) -> None:
    judge = make_judge(server)
    judge.ask([user("victim"), user("other")])
    path = judge.cache_path(cache_key("judge-a", user("victim")))
    if corrupt == "other entry":
        corrupt = judge.cache_path(cache_key("judge-a", user("other"))).read_bytes()
    path.write_bytes(corrupt)
    (reply,) = judge.ask([user("victim")])
    assert reply.text == "re: victim" and not reply.cached
    assert server.calls == 3
    assert json.loads(path.read_text())["text"] == "re: victim"  # rewritten
    assert judge.ask_one(user("victim")).cached and server.calls == 3


def test_unwritable_cache_dir_still_replies(server, make_judge, tmp_path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache dir should be")
    judge = make_judge(server, cache_dir=blocker)
    assert judge.ask_one(user("still works")).text == "re: still works"


# --------------------------------------------------------------------------- usage and cost


def test_usage_and_cost_from_the_servers_token_counts(make_judge) -> None:
    # The fake server counts whitespace-separated words: the prompt is every text part of every message.
    with FakeOpenAIServer(reply=lambda body: "0.5 correct") as srv:
        judge = make_judge(srv, price_per_1k_input=0.01, price_per_1k_output=0.03)
        a = user("Is the answer right", system="You are a strict grader.")  # 5 + 4 = 9 prompt tokens
        b = user("Grade this please", system="You are a strict grader.")  # 5 + 3 = 8 prompt tokens
        replies = judge.ask([a, b])
        assert [r.usage for r in replies] == [TokenUsage(9, 2), TokenUsage(8, 2)]
        usage = judge.usage()
        assert (usage.calls, usage.cache_hits, usage.failures, usage.retries) == (2, 0, 0, 0)
        assert (usage.prompt_tokens, usage.completion_tokens) == (17, 4)
        # 17 * 0.01 / 1000 + 4 * 0.03 / 1000 = 0.00017 + 0.00012
        assert usage.cost_usd == pytest.approx(0.00029)

        judge.ask([a, b])  # cache hits: no call, no tokens, no cost
        usage = judge.usage()
        assert (usage.calls, usage.cache_hits, usage.prompt_tokens, usage.completion_tokens) == (2, 2, 17, 4)
        assert usage.cost_usd == pytest.approx(0.00029)
        assert usage.as_dict()["cache_hits"] == 2

        srv.fail_next(status=500, times=3)  # a failed call counts as a call and a failure, with no tokens
        judge.ask([user("new")])
        usage = judge.usage()
        assert (usage.calls, usage.failures, usage.retries, usage.prompt_tokens) == (3, 1, 2, 17)

        unpriced = make_judge(srv, model="judge-b", price_per_1k_input=0.01)
        unpriced.ask([a])
        assert unpriced.usage().prompt_tokens == 9 and unpriced.usage().cost_usd is None


# --------------------------------------------------------------------------- ask_until


def parse_score(text: str) -> float | None:
    try:
        value = float(text.split()[0])
    except (ValueError, IndexError):
        return None
    return value if 0.0 <= value <= 1.0 else None


def test_ask_until_retries_with_rising_temperature(make_judge) -> None:
    # parses only on the third try (temperature 1.0)
    with FakeOpenAIServer(reply=lambda body: "0.7" if body["temperature"] == 1.0 else "Score: high") as srv:
        judge = make_judge(srv)
        value, replies, tries = ask_until(judge, user("grade me"), parse_score)
        assert (value, tries) == (0.7, 3)
        assert [r.text for r in replies] == ["Score: high", "Score: high", "0.7"]
        assert [b["temperature"] for b in srv.bodies] == [0.0, 0.5, 1.0]

        again = ask_until(judge, user("grade me"), parse_score)  # re-scoring replays from the cache
        assert again[0] == 0.7 and again[2] == 3 and all(r.cached for r in again[1])
        assert srv.calls == 3


def test_ask_until_gives_up_after_five_tries(make_judge) -> None:
    with FakeOpenAIServer(reply=lambda body: "I cannot grade this") as srv:
        judge = make_judge(srv)
        value, replies, tries = ask_until(judge, user("grade me"), parse_score)
        assert value is None and tries == 5 and len(replies) == 5
        assert [b["temperature"] for b in srv.bodies] == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_ask_until_stops_on_an_error_reply(make_judge) -> None:
    with FakeOpenAIServer(reply=lambda body: "0.1") as srv:
        judge = make_judge(srv, max_retries=0)
        srv.fail_next(status=500)
        value, replies, tries = ask_until(judge, user("grade me"), parse_score)
        assert value is None and tries == 1 and replies[0].error is not None
        assert srv.calls == 1


def test_ask_until_all_runs_rounds_concurrently(make_judge) -> None:
    # request "k" parses from try k on (temperature 0.5 * (k - 1)), request "never" never does
    def reply(body: dict[str, Any]) -> str:
        word = last_user_text(body)
        if word != "never" and body["temperature"] >= 0.5 * (int(word) - 1):
            return "1.0"
        return "?"

    with FakeOpenAIServer(reply=reply, latency=0.05) as srv:
        judge = make_judge(srv, concurrency=4)
        results = ask_until_all(judge, [user("1"), user("2"), user("3"), user("never")], parse_score)
        assert [(value, tries) for value, _, tries in results] == [(1.0, 1), (1.0, 2), (1.0, 3), (None, 5)]
        assert srv.calls == 1 + 2 + 3 + 5
        assert srv.max_in_flight >= 2


# --------------------------------------------------------------------------- the key never leaks


def test_api_key_in_no_error_text_and_no_cache_file(make_judge, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    with EchoAuthServer(reply=echo) as srv:
        judge = make_judge(srv, api_key_env=KEY_ENV, max_retries=0)
        assert judge.ask_one(user("fine")).text == "re: fine"
        assert srv.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"

        srv.fail_next(status=500)
        reply = judge.ask_one(user("will fail"))
        assert reply.error is not None and "rejected Bearer ***" in reply.error  # echoed, then scrubbed
        assert SECRET not in reply.error

        srv.fail_next(status=401)
        with pytest.raises(ConfigError) as info:
            judge.ask([user("unauthorised")])
        assert "Bearer ***" in str(info.value) and SECRET not in str(info.value)

    files = cache_files(tmp_path / "cache")
    assert files and all(SECRET.encode() not in p.read_bytes() for p in files)
    assert SECRET not in json.dumps(judge.config.describe()) + repr(judge.config) + repr(judge.usage())


# --------------------------------------------------------------------------- configuration


def test_config_defaults_and_describe(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("EVALKIT_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "evalkit" / "judge"
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "ek"))
    assert default_cache_dir() == tmp_path / "ek" / "judge"
    assert JudgeConfig(model="m").resolved_cache_dir() == tmp_path / "ek" / "judge"

    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:pw@127.0.0.1:8000/v1?token=t")
    config = JudgeConfig(model="gpt-judge", concurrency=3, max_retries=4)
    assert config.describe() == {
        "model": "gpt-judge",
        "base_url": "http://127.0.0.1:8000/v1",
        "concurrency": 3,
        "max_retries": 4,
        "timeout": 120.0,
    }
    assert JudgeConfig(model="m", base_url="http://h:1/v1").describe()["base_url"] == "http://h:1/v1"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert JudgeConfig(model="m").resolved_base_url() == "https://api.openai.com/v1"


def test_judge_is_safe_to_share_between_threads(server, make_judge) -> None:
    judge = make_judge(server, concurrency=2)
    out: dict[int, list[JudgeReply]] = {}

    def work(n: int) -> None:
        out[n] = judge.ask([user(f"t{n} q{i}") for i in range(5)])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all([r.text for r in out[n]] == [f"re: t{n} q{i}" for i in range(5)] for n in range(4))
    assert judge.usage().calls == 20 == server.calls
