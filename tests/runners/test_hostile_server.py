"""Hardening against a hostile server, second round (issue 19): the network-facing cases.

Each entry of :data:`CASES` provokes one misbehaviour of a loopback server through the command
line (``sammo_core.cli.main``, in-process) and checks what a user sees: the exit code, one error
line without a traceback, the files written, and what the server received. Focused tests of the
pieces follow the table.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import math
import re
import tracemalloc
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sammo_core.cli import main
from sammo_core.errors import BudgetExceededError, ConfigError, RunnerError
from sammo_core.runners import (
    Budget,
    LLMRequest,
    LLMResult,
    Message,
    OpenAIRunner,
    RetryPolicy,
    build_runner,
)
from sammo_core.testing.chat_server import Answer, ChatServer, RawAnswer
from sammo_core.testing.synthetic import answer, items

EXAMPLES = Path(__file__).parents[2] / "sammo_core" / "examples"
KEY = "sk-AZURE-SECRET-0123456789abcdefghijklmnopqrstuvwxyz"
PASSWORD = "hunter2-s3cret-pw"
RUN_YESNO = ["run", str(EXAMPLES / "yesno.py"), "--data", str(EXAMPLES / "yesno.jsonl")]
ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY")
ENV += ("OPENAI_API_VERSION",)
GOLD: dict[str, str] = {
    json.loads(line)["input"]: json.loads(line)["output"]
    for line in (EXAMPLES / "yesno.jsonl").read_text().splitlines()
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    yield


@dataclasses.dataclass
class World:
    """What a case may use: a scratch folder, the captured output, the environment."""

    tmp: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def cli(self, *argv: str) -> tuple[int, str, str]:
        """Run ``sammo-core ARGV`` in-process: (exit code, stdout, stderr)."""
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err


def question(request: Mapping[str, Any]) -> str:
    """The question of the yes/no example a request asks."""
    return str(re.findall(r"Input: (.*)", request["messages"][-1]["content"])[-1]).strip()


def one_error_line(err: str) -> str:
    """The single ``error: ...`` line of ``err``; fails on a traceback or several lines."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# -- the cases ------------------------------------------------------------------------------------


def azure_key_after_a_cross_origin_redirect(world: World) -> None:
    with ChatServer() as other:
        target = other.base_url + "/chat/completions"

        def redirect(request: Mapping[str, Any]) -> RawAnswer:
            return RawAnswer(307, headers=(("Location", target),))

        with ChatServer(reply=redirect) as first:
            world.monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", f"http://127.0.0.1:{first.port}")
            world.monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
            world.monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
            code, _, err = world.cli(*RUN_YESNO, "--model", "deployment", "--limit", "1")
            asked = first.stats().requests
        seen = other.records
    sent_on = [value for record in seen for _, value in record.headers]
    assert not any(KEY in value for value in sent_on)  # the key never reached the other host
    assert seen == ()  # nothing at all went there: the redirect is refused, not followed
    assert (code, asked) == (1, 1)  # not retried: the answer will not change
    line = one_error_line(err)
    assert (
        f"redirected the request (HTTP 307 to another origin, http://127.0.0.1:{other.port})"
        in (line)
    )
    assert KEY not in err


def credentials_in_the_base_url(world: World) -> None:
    with ChatServer() as server:
        url = server.base_url.replace("http://", f"http://alice:{PASSWORD}@")
        out_dir, cache = world.tmp / "out", world.tmp / "cache.sqlite"
        code, out, err = world.cli(
            *RUN_YESNO, "--model", "m", "--base-url", url, "--out", str(out_dir)
        )
        recorded = world.cli(  # a clean URL records the first row; the replay misses the next
            *RUN_YESNO, "--model", "m", "--base-url", server.base_url, "--cache", str(cache),
            "--limit", "1",
        )  # fmt: skip
        again = world.cli(
            *RUN_YESNO, "--model", "m", "--base-url", url, "--cache", str(cache), "--replay"
        )
        world.monkeypatch.setenv("OPENAI_BASE_URL", url)
        from_env = world.cli(*RUN_YESNO, "--model", "m", "--limit", "1")
        requests = server.stats().requests
    assert (recorded[0], code, again[0], from_env[0]) == (0, 1, 1, 1)
    for stdout, stderr in ((out, err), again[1:], from_env[1:]):
        line = one_error_line(stderr)
        assert "holds a user name and password" in line
        assert "http://***@127.0.0.1" in line
        assert PASSWORD not in stdout + stderr
    assert requests == 1  # the clean URL's
    for path in world.tmp.rglob("*"):
        assert not path.is_file() or PASSWORD.encode() not in path.read_bytes(), path


def gzip_body_that_inflates(world: World) -> None:
    inflated = 256 * 2**20  # 256 MiB decoded, from a body of about 250 KiB
    head = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes'
    bomb = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    parts = [bomb.compress(head)]
    block = b" " * 2**20
    parts += [bomb.compress(block) for _ in range(inflated // len(block))]
    parts.append(bomb.compress(b'"}, "finish_reason": "stop"}]}') + bomb.flush())
    body = b"".join(parts)
    assert len(body) < 2**20

    def reply(request: Mapping[str, Any]) -> str | RawAnswer:
        if question(request) == "Is water wet?":
            return "Yes"
        return RawAnswer(200, body, (("Content-Encoding", "gzip"),))

    argv = [*RUN_YESNO, "--model", "m", "--limit", "2", "--max-attempts", "1"]
    with ChatServer(reply=reply) as server:
        url = ["--base-url", server.base_url]
        warm = world.cli(*argv[:-4], *url, "--limit", "1")  # imports done before measuring
        gc.collect()
        tracemalloc.start()
        try:
            code, _, err = world.cli(*argv, *url, "--max-body-bytes", "1000000")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert warm[0] == 0
    assert code == 1
    line = one_error_line(err)
    assert "more than 1,000,000 bytes" in line and "--max-body-bytes" in line
    assert peak < 40 * 2**20  # the 256 MiB were never held


def negative_usage_and_a_token_budget(world: World) -> None:
    program = world.tmp / "program.py"
    program.write_text(
        "from sammo_core.testing.synthetic import start_program\n\nprogram = start_program()\n"
    )
    data = world.tmp / "data.jsonl"
    items(24).save(data)

    def synthetic(request: Mapping[str, Any]) -> str:
        messages = tuple(Message(m["role"], m["content"]) for m in request["messages"])
        return answer(LLMRequest(messages=messages))

    def crediting(request: Mapping[str, Any]) -> Answer:
        usage = {"prompt_tokens": -500, "completion_tokens": -500, "total_tokens": -1000}
        return Answer(synthetic(request), usage=usage)

    calls = {}
    for name, reply in (("honest", synthetic), ("crediting", crediting)):
        with ChatServer(reply=reply) as server:
            out = world.tmp / name
            code, _, err = world.cli(
                "optimize", str(program), "--data", str(data), "--model", "m",
                "--operators", "structure", "--strategy", "beam", "--width", "2",
                "--depth", "6", "--budget", "candidates=40,tokens=700", "--seed", "0",
                "--out", str(out), "--base-url", server.base_url,
            )  # fmt: skip
            calls[name] = server.stats().completions
        assert code == 0, err
    result = json.loads((world.tmp / "crediting" / "result.json").read_text())
    total, search = result["total_usage"], result["usage"]  # with the test report; without
    assert calls["crediting"] <= calls["honest"]  # a negative count is no credit
    assert total["calls"] == calls["crediting"]
    assert 0 < search["prompt_tokens"] + search["completion_tokens"] <= 700
    assert total["estimated_calls"] == total["calls"]  # flagged: estimates, not the server's


def rate_limited_once(retry_after: str) -> Callable[[Mapping[str, Any]], str | RawAnswer]:
    """Answers the first request with 429 and ``Retry-After: retry_after``, then the gold."""
    arrivals: list[str] = []

    def reply(request: Mapping[str, Any]) -> str | RawAnswer:
        arrivals.append(question(request))
        if len(arrivals) == 1:
            error = b'{"error": {"message": "slow down", "type": "rate_limit"}}'
            return RawAnswer(429, error, (("Retry-After", retry_after),))
        return GOLD[question(request)]

    return reply


def retry_after_that_is_not_a_number(world: World) -> None:
    for value in ("nan", "-5", "soon", "1e999"):
        out_dir = world.tmp / f"out-{value}"
        with ChatServer(reply=rate_limited_once(value)) as server:
            code, out, err = world.cli(
                *RUN_YESNO, "--model", "m", "--limit", "2", "--concurrency", "1",
                "--base-url", server.base_url, "--out", str(out_dir),
            )  # fmt: skip
        assert code == 0, err
        requests = json.loads((out_dir / "results.json").read_text())["requests"]
        assert requests["retries_by_cause"]["429"] == 1
        wait = requests["wait_seconds"]
        assert isinstance(wait, float) and math.isfinite(wait) and 0 <= wait <= 0.5, value
        assert re.search(r"retry wait\s+│\s+\d+\.\d s", out), value
        assert "nan" not in out and "inf" not in out


def content_in_parts_and_cut_off_replies(world: World) -> None:
    def reply(request: Mapping[str, Any]) -> Answer:
        gold = GOLD[question(request)]
        if gold == "Yes":  # the list-of-parts form, with a part that is not text
            parts = [{"type": "text", "text": "Ye"}, {"type": "image_url"}]
            return Answer(gold, content=[*parts, {"type": "text", "text": "s"}])
        return Answer(gold, finish_reason="length")  # cut off at max_tokens

    out_dir = world.tmp / "out"
    with ChatServer(reply=reply) as server:
        code, out, err = world.cli(
            *RUN_YESNO, "--model", "m", "--base-url", server.base_url, "--out", str(out_dir)
        )
    assert code == 0, err
    rows = [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    assert [row["prediction"] for row in rows] == [GOLD[row["input"]] for row in rows]
    cut = [row["input"] for row in rows if row["cut_off"]]
    assert cut == [row["input"] for row in rows if row["output"] == "No"]
    results = json.loads((out_dir / "results.json").read_text())
    assert results["scores"]["label_accuracy"]["value"] == 1.0
    assert results["cut_off"] == len(cut) > 0
    assert re.search(rf"cut-off replies \(max_tokens\)\s+│\s+{len(cut)}\b", out)


@dataclasses.dataclass(frozen=True)
class Case:
    """One misbehaviour: how it is provoked, and what must hold."""

    name: str
    provoked: str
    holds: str
    check: Callable[[World], None]


CASES = [
    Case(
        "azure key after a cross-origin redirect",
        "run on Azure (api-key header); the endpoint answers 307 to another port",
        "the redirect is refused in one line; the other server receives nothing",
        azure_key_after_a_cross_origin_redirect,
    ),
    Case(
        "user:pass@ in the base URL",
        "run with --base-url http://alice:PASSWORD@..., with --replay, and in OPENAI_BASE_URL",
        "refused in one line before any request; the password is nowhere",
        credentials_in_the_base_url,
    ),
    Case(
        "gzip body inflating to 256 MiB",
        "run --max-body-bytes 1000000; a 250 KiB gzip body that inflates to 256 MiB",
        "one error line naming the cap; memory stays under 40 MiB",
        gzip_body_that_inflates,
    ),
    Case(
        "negative usage under a token budget",
        "optimize --budget tokens=700; every answer reports usage of -500 and -500",
        "no more calls than against an honest server; usage estimated and flagged",
        negative_usage_and_a_token_budget,
    ),
    Case(
        "Retry-After that is not a number",
        "run; a 429 with Retry-After nan, -5, soon, 1e999",
        "backoff as without the header; the wait reported is a finite number",
        retry_after_that_is_not_a_number,
    ),
    Case(
        "content in parts, finish_reason length",
        "run; Yes answers come as a list of parts, No answers are cut off at max_tokens",
        "parts joined (all 20 right); cut-off rows flagged in rows, results and the summary",
        content_in_parts_and_cut_off_replies,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_hostile_server(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case.check(World(tmp_path, capsys, monkeypatch))


# -- focused: the pieces behind the table ---------------------------------------------------------

ONCE = RetryPolicy(max_attempts=1)
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, seed=0)


def ask(runner: OpenAIRunner, request: LLMRequest) -> LLMResult:
    async def go() -> LLMResult:
        async with runner:
            return await runner.generate(request)

    return asyncio.run(go())


def test_a_redirect_within_the_origin_is_followed_with_the_key() -> None:
    arrivals: list[int] = []

    def moved(request: Mapping[str, Any]) -> str | RawAnswer:
        arrivals.append(len(arrivals))
        if len(arrivals) == 1:
            return RawAnswer(307, headers=(("Location", "/v1/chat/completions?moved=1"),))
        return "moved here"

    with ChatServer(reply=moved, api_key=KEY) as server:  # 401 without the key
        result = ask(
            OpenAIRunner("m", base_url=server.base_url, api_key=KEY), LLMRequest.from_prompt("hi")
        )
        statuses = [record.status for record in server.records]
    assert result.text == "moved here"
    assert statuses == [307, 200]


def test_a_redirect_loop_ends_in_one_error() -> None:
    loop = (("Location", "/v1/chat/completions"),)
    with ChatServer(reply=lambda request: RawAnswer(307, headers=loop)) as server:
        with pytest.raises(RunnerError, match=r"\(HTTP 307 more than 5 times\); check the base"):
            ask(
                OpenAIRunner("m", base_url=server.base_url, retry=FAST),
                LLMRequest.from_prompt("hi"),
            )
        hops = server.stats().requests
    assert hops == 6  # the request and five redirects; not retried


def test_an_openai_key_is_not_sent_to_another_origin_either() -> None:
    with ChatServer() as other:
        target = (("Location", other.base_url + "/chat/completions"),)
        with ChatServer(reply=lambda request: RawAnswer(308, headers=target)) as first:
            runner = OpenAIRunner("m", base_url=first.base_url, api_key=KEY, retry=FAST)
            with pytest.raises(RunnerError) as info:
                ask(runner, LLMRequest.from_prompt("hi"))
            asked = first.stats().requests
        assert other.records == ()
    assert asked == 1  # refused at once, not retried
    assert f"to another origin, http://127.0.0.1:{other.port})" in str(info.value)
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"http://alice:{PASSWORD}@127.0.0.1:9/v1",
        f"https://{PASSWORD}@api.example.test/v1",
        f"http://alice:{PASSWORD}@[::1]:9/v1",
    ],
)
def test_a_url_with_credentials_is_refused_without_showing_them(url: str) -> None:
    with pytest.raises(ConfigError, match=r"holds a user name and password") as info:
        OpenAIRunner("m", base_url=url, api_key=KEY)
    assert PASSWORD not in str(info.value) and "***@" in str(info.value)
    with pytest.raises(ConfigError) as azure:
        OpenAIRunner("m", azure_endpoint=url.removesuffix("/v1"), api_key=KEY)  # no version
    assert PASSWORD not in str(azure.value) and "***@" in str(azure.value)


def inflating(size: int) -> bytes:
    """A gzip body of a chat completion whose content is ``size`` spaces."""
    head = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "'
    bomb = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [bomb.compress(head)]
    parts += [bomb.compress(b" " * 2**16) for _ in range(size // 2**16)]
    return b"".join([*parts, bomb.compress(b'"}}]}') + bomb.flush()])


@pytest.mark.parametrize("encoding", ["gzip", None])
def test_a_body_past_the_cap_is_not_read_and_memory_stays_bounded(encoding: str | None) -> None:
    size = 32 * 2**20  # 32 MiB decoded; the cap is 256 KiB
    body = inflating(size) if encoding else b'{"choices": [' + b" " * size + b"]}"
    headers = (("Content-Encoding", encoding),) if encoding else ()

    def reply(request: Mapping[str, Any]) -> str | RawAnswer:
        return (
            "ok" if request["messages"][-1]["content"] == "warm" else RawAnswer(200, body, headers)
        )

    with ChatServer(reply=reply) as server:
        runner = OpenAIRunner("m", base_url=server.base_url, retry=FAST, max_body_bytes=2**18)
        ask(OpenAIRunner("m", base_url=server.base_url), LLMRequest.from_prompt("warm"))
        gc.collect()
        tracemalloc.start()
        try:
            with pytest.raises(RunnerError) as info:
                ask(runner, LLMRequest.from_prompt("hi"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        requests = server.stats().requests
    assert "a body of more than 262,144 bytes (decoded; HTTP 200), which was not read" in str(
        info.value
    )
    assert requests == 2  # the warm-up and one attempt: a cap is not retried
    if encoding:  # a plain body's 32 MiB are the server's own (in this process): not measured
        assert peak < 8 * 2**20


def test_a_body_within_the_cap_is_read_whole_gzip_or_not() -> None:
    body = inflating(100_000)
    reply = lambda request: RawAnswer(200, body, (("Content-Encoding", "gzip"),))  # noqa: E731
    with ChatServer(reply=reply) as server:
        capped = OpenAIRunner("m", base_url=server.base_url, max_body_bytes=200_000)
        uncapped = OpenAIRunner("m", base_url=server.base_url, max_body_bytes=None)
        results = [ask(r, LLMRequest.from_prompt("hi")) for r in (capped, uncapped)]
    assert [len(r.text) for r in results] == [100_000 - 100_000 % 2**16] * 2
    with pytest.raises(ConfigError, match="max_body_bytes must be >= 1 or None; got 0"):
        OpenAIRunner("m", base_url="http://127.0.0.1:9/v1", max_body_bytes=0)


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -500, "completion_tokens": 3},
        {"prompt_tokens": 12, "completion_tokens": -1},
        {"prompt_tokens": 12.5, "completion_tokens": 3},
        {"prompt_tokens": "12", "completion_tokens": 3},
        {"prompt_tokens": True, "completion_tokens": 3},
        {"prompt_tokens": 10**15, "completion_tokens": 3},
        "lots",
        None,
    ],
)
def test_impossible_usage_is_estimated_and_flagged(usage: Any) -> None:
    reply = lambda request: Answer("one two three", usage=usage)  # noqa: E731
    with ChatServer(reply=reply, usage=usage is not None) as server:
        result = ask(OpenAIRunner("m", base_url=server.base_url), LLMRequest.from_prompt("a b"))
    assert (result.prompt_tokens, result.completion_tokens) == (2, 3)
    assert result.usage_estimated


def test_plausible_usage_is_the_servers() -> None:
    usage = {"prompt_tokens": 40, "completion_tokens": 0}
    with ChatServer(reply=lambda request: Answer("", usage=usage)) as server:
        result = ask(OpenAIRunner("m", base_url=server.base_url), LLMRequest.from_prompt("a b"))
    assert (result.prompt_tokens, result.completion_tokens, result.usage_estimated) == (
        40,
        0,
        False,
    )


def test_the_ledger_counts_estimated_calls_and_never_a_credit() -> None:
    def spend(usage: Mapping[str, int] | None) -> tuple[int, Any]:
        with ChatServer(reply=lambda request: Answer("yes", usage=usage)) as server:
            stack = build_runner("m", base_url=server.base_url, budget=Budget(tokens=2000))
            with pytest.raises(BudgetExceededError):
                for i in range(1000):
                    stack.runner.generate_sync(LLMRequest.from_prompt(f"q {i}", max_tokens=4))
            return server.stats().completions, stack.usage

    honest, honest_usage = spend(None)
    sent, used = spend({"prompt_tokens": -10_000, "completion_tokens": -10_000})
    assert sent == honest < 1000  # the budget stops both alike
    assert used.total_tokens == honest_usage.total_tokens > 0
    assert (used.calls, used.estimated_calls, honest_usage.estimated_calls) == (sent, sent, 0)
    assert f"({sent} calls' tokens estimated)" in used.summary()


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ([{"type": "text", "text": "Yes"}, {"type": "text", "text": ", sure"}], "Yes, sure"),
        ([{"type": "refusal", "refusal": "no"}, {"type": "text", "text": "ok"}], "ok"),
        ([{"type": "image_url", "image_url": {"url": "x"}}], ""),
        ([], ""),
    ],
)
def test_content_in_parts_is_joined(content: Any, text: str) -> None:
    with ChatServer(reply=lambda request: Answer("unused", content=content)) as server:
        result = ask(OpenAIRunner("m", base_url=server.base_url), LLMRequest.from_prompt("hi"))
    assert result.text == text


def test_content_that_is_not_text_is_a_malformed_answer() -> None:
    failure = r"failed after 3 attempts; .*not a chat completion"
    with ChatServer(reply=lambda request: Answer(content={"text": "Yes"})) as server:
        runner = OpenAIRunner("m", base_url=server.base_url, retry=FAST)
        with pytest.raises(RunnerError, match=failure):
            ask(runner, LLMRequest.from_prompt("x"))


@pytest.mark.parametrize("mode", ["chat", "completion"])
def test_a_reply_cut_at_max_tokens_is_flagged_and_the_flag_is_cached(
    mode: str, tmp_path: Path
) -> None:
    long = lambda request: "one two three four five"  # noqa: E731
    with ChatServer(reply=long) as server:
        stack = build_runner("m", base_url=server.base_url, cache=tmp_path / "c.sqlite")
        cut = LLMRequest.from_prompt("count", max_tokens=2, mode=mode)
        whole = LLMRequest.from_prompt("count", max_tokens=20, mode=mode)
        first, again, full = (stack.runner.generate_sync(r) for r in (cut, cut, whole))
        asyncio.run(stack.aclose())
    assert (first.text, first.cut_off, again.cut_off, again.cached) == ("one two", True, True, True)
    assert not full.cut_off


def test_optimize_traces_cut_off_replies_per_candidate(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(
        "from sammo_core.testing.synthetic import start_program\n\nprogram = start_program()\n"
    )
    data = tmp_path / "data.jsonl"
    items(16).save(data)

    def cut(request: Mapping[str, Any]) -> Answer:
        messages = tuple(Message(m["role"], m["content"]) for m in request["messages"])
        return Answer(answer(LLMRequest(messages=messages)), finish_reason="length")

    with ChatServer(reply=cut) as server:
        code = main(
            [
                "optimize", str(program), "--data", str(data), "--model", "m",
                "--operators", "structure", "--budget", "2", "--width", "1", "--depth", "1",
                "--out", str(tmp_path / "run"), "--base-url", server.base_url,
            ]
        )  # fmt: skip
    assert code == 0
    lines = (tmp_path / "run" / "trace.jsonl").read_text().splitlines()
    trace = [json.loads(line) for line in lines]
    assert trace[0]["replies"]["cut_off"] == 4  # every validation row of the start program


def test_rows_whose_tokens_are_estimates_are_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A server that reports no usage: every row's token counts (so its cost) are estimates,
    # flagged in the rows, in results.json and in the summary.
    with ChatServer(reply=question, usage=False) as server:
        args = [*RUN_YESNO, "--model", "loopback", "--base-url", server.base_url]
        args += ["--out", str(tmp_path)]
        assert main(args) == 0
    rows = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert rows and all(r["tokens_estimated"] for r in rows)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["tokens_estimated"] == len(rows)
    assert results["usage"]["estimated_calls"] == len(rows)
    out = " ".join(capsys.readouterr().out.split())
    assert f"rows with estimated tokens │ {len(rows)}" in out
