"""The runner's HTTP hot path (issue 12): little client work per request, and what the openai
client used to send (authentication, organization, Azure's api-version, proxies) still sent."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import FrameType

import orjson
import pytest

from sammo_core.errors import RunnerError
from sammo_core.runners.base import LLMRequest
from sammo_core.runners.http_transport import HttpStatusError, HttpTransport
from sammo_core.runners.openai_runner import OpenAIRunner
from sammo_core.runners.retry import RetryPolicy
from sammo_core.runners.throttle import estimate_tokens
from sammo_core.testing.chat_server import ChatServer

KEY = "sk-test-0123456789abcdef"
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, seed=0)
ENV_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OPENAI_API_VERSION",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)
COMPLETION = orjson.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield


@dataclass
class Seen:
    """What a :func:`recording_server` received: request lines and their headers."""

    lines: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def recording_server(
    status: int = 200, body: bytes = COMPLETION
) -> AsyncIterator[tuple[int, Seen]]:
    """A loopback HTTP/1.1 server that records each request's line and headers and answers
    every one with ``status`` and ``body``. Yields ``(port, seen)``."""
    seen = Seen()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                line, *rest = head.decode("latin-1").split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, sep, value in (h.partition(":") for h in rest)
                    if sep
                }
                await reader.readexactly(int(headers.get("content-length", "0")))
                seen.lines.append(line)
                seen.headers.append(headers)
                reason = "OK" if status == 200 else "Error"
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
                    "Content-Type: application/json\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port: int = server.sockets[0].getsockname()[1]
        yield port, seen
    finally:
        server.close()
        await server.wait_closed()


# -- client work per request ------------------------------------------------------------------


def test_client_work_per_request_is_a_fraction_of_the_openai_client_path() -> None:
    """Python calls made on the client's thread per request: about 300, where the openai
    client's request path made about 2,300. A count, unlike CPU time, does not depend on how
    loaded the machine is; the server runs on its own thread, which is not counted."""
    rows = 200

    async def calls_per_request(base_url: str) -> float:
        async with OpenAIRunner("m", base_url=base_url, max_concurrency=8) as runner:
            warm_up = [LLMRequest.from_prompt(f"warm-up {i}") for i in range(8)]
            await runner.generate_many(warm_up)  # connections open, imports done
            calls = 0

            def count(frame: FrameType, event: str, arg: object) -> None:
                nonlocal calls
                calls += event == "call"

            sys.setprofile(count)
            try:
                results = await runner.generate_many(
                    [LLMRequest.from_prompt(f"question {i}") for i in range(rows)]
                )
            finally:
                sys.setprofile(None)
            assert [r.text for r in results] == [f"echo: question {i}" for i in range(rows)]
            return calls / rows

    with ChatServer() as server:
        per_request = asyncio.run(calls_per_request(server.base_url))
    assert per_request < 600, f"{per_request:.0f} Python calls per request"


# -- what goes over the wire --------------------------------------------------------------------


def test_key_organization_and_project_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-test")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-test")

    async def main() -> tuple[str, Seen]:
        async with recording_server() as (port, seen):
            base_url = f"http://127.0.0.1:{port}/v1"
            async with OpenAIRunner("m", base_url=base_url, api_key=KEY) as runner:
                result = await runner.generate(LLMRequest.from_prompt("hi"))
        return result.text, seen

    text, seen = asyncio.run(main())
    assert text == "ok"
    assert seen.lines == ["POST /v1/chat/completions HTTP/1.1"]
    [headers] = seen.headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["openai-organization"] == "org-test"
    assert headers["openai-project"] == "proj-test"
    assert headers["content-type"] == "application/json"


def test_azure_sends_its_key_header_and_api_version() -> None:
    async def main() -> Seen:
        async with (
            recording_server() as (port, seen),
            OpenAIRunner(
                "my deployment",
                azure_endpoint=f"http://127.0.0.1:{port}",
                api_version="2024-10-21",
                api_key=KEY,
            ) as runner,
        ):
            await runner.generate(LLMRequest.from_prompt("hi"))
        return seen

    seen = asyncio.run(main())
    assert seen.lines == [
        "POST /openai/deployments/my%20deployment/chat/completions?api-version=2024-10-21 HTTP/1.1"
    ]
    assert seen.headers[0]["api-key"] == KEY
    assert "authorization" not in seen.headers[0]


def test_the_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> Seen:
        async with recording_server() as (port, seen):
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
            runner = OpenAIRunner("m", base_url="http://api.example.test/v1", api_key=KEY)
            async with runner:
                await runner.generate(LLMRequest.from_prompt("hi"))
        return seen

    seen = asyncio.run(main())
    # A request through a proxy names the whole URL; the host itself was never resolved.
    assert seen.lines == ["POST http://api.example.test/v1/chat/completions HTTP/1.1"]


def test_no_proxy_keeps_a_host_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with ChatServer() as server:
        runner = OpenAIRunner("m", base_url=server.base_url, retry=FAST)
        assert runner.generate_sync(LLMRequest.from_prompt("hi")).text == "echo: hi"


# -- failures -----------------------------------------------------------------------------------


def test_an_error_page_that_is_not_json_is_quoted_without_the_key() -> None:
    page = f"<html><body>502 Bad Gateway (upstream rejected {KEY})</body></html>".encode()

    async def main() -> tuple[RunnerError, int]:
        async with recording_server(502, page) as (port, seen):
            base_url = f"http://127.0.0.1:{port}/v1"
            runner = OpenAIRunner("m", base_url=base_url, api_key=KEY, retry=FAST)
            with pytest.raises(RunnerError) as info:
                async with runner:
                    await runner.generate(LLMRequest.from_prompt("hi"))
        return info.value, len(seen.lines)

    error, requests = asyncio.run(main())
    assert requests == 3  # a 502 is retried
    assert "HTTP 502: <html><body>502 Bad Gateway (upstream rejected ***)" in str(error)
    assert KEY[:8] not in str(error)


def test_a_refused_connection_is_retried_as_dropped() -> None:
    with ChatServer() as server:
        port = server.port
    runner = OpenAIRunner("m", base_url=f"http://127.0.0.1:{port}/v1", retry=FAST)
    with pytest.raises(RunnerError, match=r"3 attempts; last failure: connection failed: "):
        runner.generate_sync(LLMRequest.from_prompt("hi"))
    assert runner.retry_stats.retries_by_cause == {"dropped": 2}


def test_the_transport_raises_status_errors_with_the_whole_body() -> None:
    async def main() -> HttpStatusError:
        async with recording_server(418, b'{"error": {"message": "teapot"}}') as (port, _):
            transport = HttpTransport(f"http://127.0.0.1:{port}/v1", {})
            try:
                with pytest.raises(HttpStatusError) as info:
                    await transport.post("/chat/completions", b"{}")
            finally:
                await transport.aclose()
        return info.value

    error = asyncio.run(main())
    assert (error.status, error.content) == (418, b'{"error": {"message": "teapot"}}')
    assert str(error) == "HTTP 418"
    keyed = HttpTransport("http://x.test/v1/", {"Authorization": f"Bearer {KEY}"})
    assert repr(keyed) == "HttpTransport(base_url='http://x.test/v1', max_connections=32)"


def test_a_long_prompt_costs_the_client_little_cpu_without_a_token_limit() -> None:
    """Counting a 100 KB prompt's tokens for a rate limit nobody set cost about 10 ms of CPU a
    request; without ``tokens_per_minute`` nothing is counted. Only the client's thread is
    timed (the server runs on another)."""
    prompt = "The quick brown fox, jumps over the lazy dog. " * 2200  # about 100 KB
    requests = [LLMRequest.from_prompt(f"{i}: {prompt}", max_tokens=4) for i in range(20)]

    async def cpu_per_request(runner: OpenAIRunner) -> float:
        async with runner:
            await runner.generate(LLMRequest.from_prompt("warm-up"))
            start = time.thread_time()
            results = await runner.generate_many(requests)
            seconds = time.thread_time() - start
        assert all(r.text.startswith("echo:") for r in results)
        return seconds / len(requests)

    with ChatServer(reply=lambda body: "echo: ok") as server:
        plain = OpenAIRunner("m", base_url=server.base_url)
        seconds = asyncio.run(cpu_per_request(plain))
        limited = OpenAIRunner("m", base_url=server.base_url, tokens_per_minute=10**9)
        asyncio.run(cpu_per_request(limited))
    assert seconds < 0.004, f"{seconds * 1000:.1f} ms of client CPU per request"
    assert plain.stats.throttle.tokens_charged == 0
    expected = sum(estimate_tokens(r) for r in requests) + estimate_tokens(
        LLMRequest.from_prompt("warm-up")
    )
    assert limited.stats.throttle.tokens_charged == expected


def test_building_a_runner_sets_up_no_tls_it_will_not_use() -> None:
    """The openai client only configures the runner; given its default HTTP client it would
    load the certificate store for every runner built (about 50 ms each)."""
    OpenAIRunner("m", base_url="http://127.0.0.1:9/v1")  # imports done
    start = time.process_time()
    runners = [OpenAIRunner(f"m{i}", base_url="http://127.0.0.1:9/v1") for i in range(20)]
    seconds = time.process_time() - start
    assert len({r.model for r in runners}) == 20
    assert seconds < 0.3, f"{seconds / 20 * 1000:.1f} ms per runner built"
