"""The loopback chat server speaks HTTP/1.1 and the chat-completions protocol, and faults on cue."""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sammo_core.errors import ConfigError
from sammo_core.testing.chat_server import (
    FAULT_KINDS,
    ChatServer,
    FaultPlan,
    ReplyFault,
    echo_reply,
)
from sammo_core.tokens import count_tokens

ROOT = Path(__file__).absolute().parents[2]


def post(
    server: ChatServer,
    payload: Any,
    path: str = "/v1/chat/completions",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def chat(content: str, **params: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **params}


def test_completion_has_the_openai_shape_and_exact_usage() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello, world!"},
    ]
    with ChatServer() as server:
        status, headers, body = post(server, {"model": "gpt-x", "messages": messages})
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "gpt-x"
    assert answer["choices"][0]["message"] == {
        "role": "assistant",
        "content": "echo: Hello, world!",
    }
    assert answer["choices"][0]["finish_reason"] == "stop"
    prompt = count_tokens("Be brief.") + count_tokens("Hello, world!")
    completion = count_tokens("echo: Hello, world!")
    assert answer["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def test_models_lists_the_model() -> None:
    with ChatServer(model="local-llm") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request("GET", "/v1/models")
            response = connection.getresponse()
            listing = json.loads(response.read())
        finally:
            connection.close()
    assert response.status == 200
    assert [m["id"] for m in listing["data"]] == ["local-llm"]


def test_reply_function_stop_and_max_tokens() -> None:
    seen: list[dict[str, Any]] = []

    def reply(request: Any) -> str:
        seen.append(dict(request))
        return "one two three. four five"

    with ChatServer(reply=reply) as server:
        _, _, cut = post(server, chat("x", max_tokens=2))
        _, _, stopped = post(server, chat("y", stop=["."]))
    cut_answer, stopped_answer = json.loads(cut), json.loads(stopped)
    assert cut_answer["choices"][0]["message"]["content"] == "one two"
    assert cut_answer["choices"][0]["finish_reason"] == "length"
    assert cut_answer["usage"]["completion_tokens"] == 2
    assert stopped_answer["choices"][0]["message"]["content"] == "one two three"
    assert [s["max_tokens"] for s in seen[:1]] == [2]
    assert seen[1]["stop"] == ["."]


def test_keeps_the_connection_alive_between_requests() -> None:
    with ChatServer() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        sockets = []
        try:
            for i in range(3):
                connection.request("POST", "/v1/chat/completions", body=json.dumps(chat(f"{i}")))
                response = connection.getresponse()
                assert response.getheader("Connection") == "keep-alive"
                assert (
                    json.loads(response.read())["choices"][0]["message"]["content"] == f"echo: {i}"
                )
                sockets.append(connection.sock)
        finally:
            connection.close()
        assert (server.stats().requests, server.stats().connections) == (3, 1)
    assert sockets[0] is sockets[1] is sockets[2]


def test_client_errors() -> None:
    with ChatServer(api_key="right") as server:
        assert post(server, chat("x"))[0] == 401
        assert post(server, chat("x"), headers={"Authorization": "Bearer wrong"})[0] == 401
        good = {"Authorization": "Bearer right"}
        assert post(server, chat("x"), headers=good)[0] == 200
        assert post(server, chat("x"), headers={"api-key": "right"})[0] == 200  # Azure style
        assert post(server, b"{not json", headers=good)[0] == 400
        assert post(server, {"model": "m", "messages": []}, headers=good)[0] == 400
        assert post(server, chat("x"), path="/v2/chat/completions", headers=good)[0] == 404
        _, _, body = post(server, chat("x"), headers={"Authorization": "Bearer wrong"})
        stats = server.stats()
    assert b"right" not in body and b"wrong" not in body
    assert stats.by_status == {401: 3, 200: 2, 400: 2, 404: 1}


def test_each_fault_kind_on_the_wire() -> None:
    with ChatServer(
        faults=FaultPlan.scripted(["429", "500", "503", "garbage"]), retry_after=0.25
    ) as s:
        status, headers, _ = post(s, chat("a"))
        assert (status, headers["Retry-After"], headers["retry-after-ms"]) == (429, "0.25", "250")
        assert post(s, chat("b"))[0] == 500
        assert post(s, chat("c"))[0] == 503
        status, _, body = post(s, chat("d"))
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
        assert post(s, chat("e"))[0] == 200  # the script has run out
    with ChatServer(faults=FaultPlan.scripted(["drop"])) as s:
        with pytest.raises(http.client.RemoteDisconnected):
            post(s, chat("a"))
        assert s.stats().by_status == {0: 1}
    with ChatServer(faults=FaultPlan.scripted(["slow"]), slow_delay=0.2) as s:
        connection = http.client.HTTPConnection("127.0.0.1", s.port, timeout=0.05)
        try:
            with pytest.raises(TimeoutError):
                connection.request("POST", "/v1/chat/completions", body=json.dumps(chat("a")))
                connection.getresponse()
        finally:
            connection.close()


def test_drip_sends_headers_at_once_and_the_body_a_byte_at_a_time() -> None:
    with ChatServer(faults=FaultPlan.scripted(["drip"]), drip_interval=0.02) as s:
        connection = http.client.HTTPConnection("127.0.0.1", s.port, timeout=1)
        try:
            connection.request("POST", "/v1/chat/completions", body=json.dumps(chat("a")))
            started = time.monotonic()
            response = connection.getresponse()
            headers_after = time.monotonic() - started
            first = response.read(1)
            body = first + response.read()
            body_after = time.monotonic() - started
        finally:
            connection.close()
        stats = s.stats()
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["content"] == "echo: a"
    assert headers_after < 0.5
    assert body_after >= 0.02 * len(body) * 0.9  # one byte per interval, no read waits long
    assert stats.by_fault == {"drip": 1}


def test_drip_stops_when_the_client_hangs_up() -> None:
    with ChatServer(faults=FaultPlan.scripted(["drip"]), drip_interval=0.01) as s:
        connection = http.client.HTTPConnection("127.0.0.1", s.port, timeout=1)
        connection.request("POST", "/v1/chat/completions", body=json.dumps(chat("a")))
        connection.getresponse().read(3)
        connection.close()
        time.sleep(0.2)
        assert s.stats().in_flight == 0
        assert post(s, chat("b"))[0] == 200  # the server still serves


def test_reply_function_chooses_its_fault_or_error() -> None:
    def reply(request: Any) -> str:
        content = request["messages"][-1]["content"]
        if content.startswith("http "):
            raise ReplyFault(int(content[5:]), f"error {content[5:]} for you")
        if content in FAULT_KINDS:
            raise ReplyFault(content, "late text")
        return "fine"

    with ChatServer(reply=reply, slow_delay=0.05, drip_interval=0.001) as s:
        status, _, body = post(s, chat("http 400"))
        assert (status, json.loads(body)["error"]["message"]) == (400, "error 400 for you")
        assert post(s, chat("http 503"))[0] == 503
        assert post(s, chat("429"))[0] == 429
        status, _, body = post(s, chat("slow"))
        assert json.loads(body)["choices"][0]["message"]["content"] == "late text"
        status, _, body = post(s, chat("drip"))
        assert json.loads(body)["choices"][0]["message"]["content"] == "late text"
        with pytest.raises(http.client.RemoteDisconnected):
            post(s, chat("drop"))
        assert post(s, chat("other"))[0] == 200
        stats = s.stats()
    assert stats.by_fault == {"429": 1, "slow": 1, "drip": 1, "drop": 1}
    assert stats.by_status == {400: 1, 503: 1, 429: 1, 200: 3, 0: 1}
    with pytest.raises(ConfigError, match="unknown fault kind 'late'"):
        ReplyFault("late")  # type: ignore[arg-type]


def test_fault_plan_is_reproducible_and_ends_after_its_attempts() -> None:
    plan = FaultPlan(rate=0.3, attempts=2, seed=7)
    keys = [f"body-{i}" for i in range(400)]
    first = [plan.decide(k, 1, i) for i, k in enumerate(keys)]
    assert first == [FaultPlan(rate=0.3, attempts=2, seed=7).decide(k, 1, 0) for k in keys]
    assert first != [FaultPlan(rate=0.3, attempts=2, seed=8).decide(k, 1, 0) for k in keys]
    faulted = [k for k, f in zip(keys, first, strict=True) if f is not None]
    assert 80 < len(faulted) < 160
    assert {plan.decide(k, 1, 0) for k in faulted} <= set(FAULT_KINDS)
    assert all(plan.decide(k, 2, 0) is not None for k in faulted)  # still faulty on attempt 2
    assert all(plan.decide(k, 3, 0) is None for k in keys)  # ... but never on attempt 3
    assert FaultPlan.always("503").decide("x", 10**6, 0) == "503"


def test_fault_plan_and_server_validate_their_arguments() -> None:
    with pytest.raises(ConfigError, match="fault rate must be within"):
        FaultPlan(rate=1.5)
    with pytest.raises(ConfigError, match="unknown fault kind 'teapot'"):
        FaultPlan(kinds=("teapot",))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not both"):
        ChatServer(faults=FaultPlan(), fault_rate=0.5)
    with pytest.raises(ConfigError, match="latency must be >= 0"):
        ChatServer(latency=-1)


def test_counts_faults_and_retried_attempts_per_body() -> None:
    with ChatServer(fault_rate=1.0, fault_kinds=["500"], fault_attempts=2) as server:
        statuses = [post(server, chat("same"))[0] for _ in range(3)]
        stats = server.stats()
    assert statuses == [500, 500, 200]
    assert [r.attempt for r in stats.records] == [1, 2, 3]
    assert len({r.key for r in stats.records}) == 1
    assert stats.by_fault == {"500": 2}
    assert stats.completions == 1


def test_serves_128_concurrent_connections_without_serialising() -> None:
    async def one(port: int, i: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            body = json.dumps(chat(f"q{i}")).encode()
            head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
            writer.write(head.encode() + b"\r\n\r\n" + body)
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")
            return await reader.read(100)
        finally:
            writer.close()
            await writer.wait_closed()

    async def main(port: int) -> list[bytes]:
        return await asyncio.gather(*(one(port, i) for i in range(128)))

    with ChatServer(latency=0.2) as server:
        answers = asyncio.run(main(server.port))
        stats = server.stats()
    assert len(answers) == 128
    assert stats.max_in_flight == 128
    assert stats.completions == 128
    assert max(r.finished for r in stats.records) - min(r.started for r in stats.records) < 2.0


def test_stops_cleanly() -> None:
    server = ChatServer(latency=5.0)
    with server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.connect()  # an idle keep-alive connection and ...
        errors: list[Exception] = []

        def send() -> None:
            try:
                post(server, chat("x"))
            except Exception as exc:
                errors.append(exc)

        sent = threading.Thread(target=send, daemon=True)
        sent.start()  # ... one in the middle of its latency
        while server.stats().in_flight == 0:
            time.sleep(0.005)
    connection.close()
    sent.join(timeout=5)
    assert [type(e) for e in errors] == [http.client.RemoteDisconnected]
    assert not [t for t in threading.enumerate() if t.name == "sammo-chat-server"]
    server.stop()  # idempotent
    with pytest.raises(ConfigError, match="already started"):
        server.start()


def test_echo_reply_uses_the_last_message() -> None:
    assert echo_reply(chat("hi")) == "echo: hi"
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert echo_reply({"messages": [{"role": "user", "content": parts}]}) == "echo: ab"


def test_command_line_serves_until_interrupted() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "sammo_core.testing.chat_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line
        port = int(line.split(":")[2].split("/")[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("POST", "/v1/chat/completions", body=json.dumps(chat("cli")))
            assert json.loads(connection.getresponse().read())["choices"][0]["message"]["content"]
        finally:
            connection.close()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    assert "served 1 requests" in out
