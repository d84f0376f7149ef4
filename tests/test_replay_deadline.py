"""Replay always ends: ``--timeout`` is a total deadline per attempt, and bad responses are clear errors.

A misbehaving HTTP server runs in the test on 127.0.0.1 (a raw socket, so it
can misbehave byte by byte): it trickles the body after the headers, or the
headers themselves, a byte at a time, faster than any per-read timeout would
notice; or it answers 200 with a JSON list or with wrongly typed fields.
Every server thread stops by itself within a few seconds.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.ingest.pipeline import ingest
from tracelens.replay import ReplayClient, build_plan

KEY_ENV = {"ANTHROPIC_API_KEY": "test-key-not-a-secret"}
TRACE = {
    "trace_id": "tr_1", "provider": "anthropic", "model_requested": "claude-sonnet-4-5",
    "model_returned": "claude-sonnet-4-5-20250929", "request_is_exact": True,
    "request_raw": '{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}',
}


class BadServer:
    """One-connection-at-a-time HTTP server that misbehaves as told; stops within ``life`` seconds."""

    def __init__(self, mode: str, body: bytes = b"", interval: float = 0.2, life: float = 8.0):
        self.mode, self.body, self.interval, self.life = mode, body, interval, life
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.dropped_at: float | None = None  # when the client closed a trickled connection
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()

    def _over(self) -> bool:
        return self.stop.is_set() or time.monotonic() - self.started > self.life

    def _serve(self) -> None:
        while not self._over():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                self.requests += 1
                self._read_request(conn)
                self._respond(conn)

    def _read_request(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
        while len(rest) < length:
            rest += conn.recv(65536)

    def _trickle(self, conn: socket.socket, data: bytes) -> None:
        for i in range(len(data)):
            if self._over():
                return
            try:
                conn.sendall(data[i:i + 1])
            except OSError:  # the client dropped the connection
                self.dropped_at = time.monotonic()
                return
            time.sleep(self.interval)

    def _respond(self, conn: socket.socket) -> None:
        body = self.body or json.dumps({"id": "msg_1", "type": "message", "content": [{"type": "text", "text": "x" * 200}],
                                        "model": "claude-sonnet-4-5-20250929", "stop_reason": "end_turn"}).encode()
        head = (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
                "request-id: req_bad\r\n\r\n").encode()
        if self.mode == "trickle body":
            conn.sendall(head)
            self._trickle(conn, body)
        elif self.mode == "trickle headers":
            self._trickle(conn, head + body)
        else:
            conn.sendall(head + body)


def replay_once(server: BadServer, timeout: float):
    client = ReplayClient(base_url=server.base_url, timeout=timeout, max_attempts=1, env=KEY_ENV, sleep=lambda s: None)
    t0 = time.monotonic()
    run = client.run([build_plan(TRACE, n=1)])
    return run.results[0], time.monotonic() - t0


@pytest.mark.parametrize("mode", ["trickle body", "trickle headers"])
def test_a_trickling_server_cannot_outlast_the_deadline(mode):
    # a byte every 0.2 s: no single read ever waits 1 s, so per-read timeouts alone never fire
    with BadServer(mode, interval=0.2) as server:
        result, took = replay_once(server, timeout=1.0)
        assert result.error and "timed out after 1s" in result.error, result
        assert took < 3.0, took
        if mode == "trickle body":  # the response was closed: the server sees the connection dropped
            deadline = time.monotonic() + 3
            while server.dropped_at is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.dropped_at is not None and server.dropped_at - server.started < 4.0


@pytest.mark.parametrize(("body", "says"), [
    (b"[1, 2, 3]", "JSON list, expected an object"),
    (b'"just a string"', "JSON str, expected an object"),
    (json.dumps({"content": "hello", "model": "m"}).encode(), "'content' is str, expected a list"),
    (json.dumps({"content": [{"type": "text", "text": 5}]}).encode(), "'text' is int, expected a string"),
    (json.dumps({"content": ["a"]}).encode(), "content[0] is str"),
    (json.dumps({"content": [], "usage": [1, 2]}).encode(), "'usage' is list, expected an object"),
    (json.dumps({"content": [], "usage": {"input_tokens": "12"}}).encode(), "'input_tokens' is str"),
    (json.dumps({"content": [], "model": {"id": 1}}).encode(), "'model' is dict, expected a string"),
])
def test_a_wrongly_shaped_response_is_a_clear_error(body, says):
    with BadServer("plain", body=body) as server:
        result, took = replay_once(server, timeout=5.0)
    assert result.error and says in result.error and "not a Messages API message" in result.error, result.error
    assert result.response_raw == body.decode() and took < 3.0


def test_replay_command_ends_with_timeout_against_a_trickling_server(store, tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_text(anthropic_line(1) + "\n")
    ingest(store, [str(p)])
    with BadServer("trickle body", interval=0.2) as server:
        t0 = time.monotonic()
        r = CliRunner().invoke(
            __import__("tracelens.cli.main", fromlist=["cli"]).cli,
            ["replay", "msg_000001", "--n", "1", "--yes", "--timeout", "1", "--base-url", server.base_url,
             "--store", str(store.root), "--no-save"],
            env={**KEY_ENV, "ANTHROPIC_BASE_URL": None},
        )
        took = time.monotonic() - t0
    assert took < 6.0, took
    assert "timed out after 1s" in r.output and "Traceback" not in r.output, r.output


def test_secrets_echoed_by_the_server_are_not_stored(tmp_path):
    from tests.secret_corpus import shapes
    from tracelens.replay import load_replays, write_replays

    leaked = shapes()[0]  # an Anthropic key shape, generated
    body = json.dumps({"id": "msg_1", "type": "message", "model": "claude-sonnet-4-5-20250929", "stop_reason": "end_turn",
                       "content": [{"type": "text", "text": f"your key is {leaked.value}"}]}).encode()
    with BadServer("plain", body=body) as server:
        result, _ = replay_once(server, timeout=5.0)
    assert result.ok and leaked.value in result.response_text  # the caller sees what came back...
    write_replays(tmp_path, [result])
    stored = json.dumps(load_replays(tmp_path).to_dicts(), default=str)
    assert not leaked.leaks(stored) and "[secret:anthropic-key]" in stored  # ...the store does not keep it
