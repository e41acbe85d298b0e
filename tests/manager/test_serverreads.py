"""The control server's reads from ZMQ_FD: pipelined requests with events sent
between them, handlers that return an already encoded result, and handlers
that return their result at once in place of an awaitable.

ZMQ_FD is edge-triggered, so a send between two reads can consume the edge
while requests wait. These tests fail by timing out when a request is never
read."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio
from unitmgr.manager import protocol
from unitmgr.manager.keys import ensure_keys
from unitmgr.manager.paths import resolve
from unitmgr.manager.server import ControlServer, Peer, current_peer

PIPELINED = 200


class EventingHandler:
    """`echo` sends an event to the caller before replying; `encoded` returns EncodedJSON.

    `now` returns its result at once, with the peer that current_peer contains
    during the call; `invalid` returns a value that is neither a result nor
    an awaitable; `refused` raises a ProtocolError at once. The others run
    as tasks."""

    def __init__(self) -> None:
        self.server: ControlServer | None = None

    def __call__(self, request: protocol.Request, peer: Peer) -> Any:
        if request.cmd == "now":
            seen = current_peer.get()
            return {"n": request.id, "same_peer": seen is peer}
        if request.cmd == "invalid":
            return 42
        if request.cmd == "refused":
            raise protocol.ProtocolError(protocol.REFUSED, "refused at once")
        return self.run_later(request, peer)

    async def run_later(self, request: protocol.Request, peer: Peer) -> dict | protocol.EncodedJSON:
        if request.cmd == "encoded":
            return protocol.EncodedJSON('{"units":[{"name":"web.service","main_pid":7}]}')
        assert self.server is not None
        self.server.send_event(peer.identity, {"sub": 1, "seq": request.id, "event": "state"})
        return {"n": request.id}


@pytest.fixture
async def served():
    home = Path(tempfile.mkdtemp(prefix="um-"))
    paths = resolve({"UNITMGR_HOME": str(home), "HOME": str(home)})
    material = ensure_keys(paths)
    handler = EventingHandler()
    server = ControlServer(paths, material, handler)
    handler.server = server
    await server.start()
    context = zmq.asyncio.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.curve_serverkey = material.server.public
    dealer.curve_publickey = material.client.public
    dealer.curve_secretkey = material.client.secret
    dealer.connect(paths.control_endpoint)
    try:
        yield dealer
    finally:
        dealer.close(linger=0)
        context.term()
        await server.stop()
        shutil.rmtree(home, ignore_errors=True)


async def receive(dealer: zmq.asyncio.Socket) -> dict:
    return json.loads(await asyncio.wait_for(dealer.recv(), timeout=10))


async def test_pipelined_requests_with_events_all_answered(served):
    for number in range(1, PIPELINED + 1):
        await served.send(protocol.encode_request(number, "echo"))

    replies: set[int] = set()
    events: set[int] = set()
    while len(replies) < PIPELINED or len(events) < PIPELINED:
        message = await receive(served)
        if "event" in message:
            events.add(message["seq"])
        else:
            replies.add(message["result"]["n"])

    assert replies == set(range(1, PIPELINED + 1))
    assert events == set(range(1, PIPELINED + 1))


async def test_encoded_result_sent_unchanged(served):
    await served.send(protocol.encode_request("a", "encoded"))

    reply = await receive(served)

    assert reply == {"id": "a", "ok": True,
                     "result": {"units": [{"name": "web.service", "main_pid": 7}]}}


async def test_immediate_result_answered_with_peer(served):
    await served.send(protocol.encode_request(3, "now"))

    reply = await receive(served)

    assert reply == {"id": 3, "ok": True, "result": {"n": 3, "same_peer": True}}


async def test_immediate_and_task_requests_pipelined(served):
    for number in range(1, PIPELINED + 1):
        await served.send(protocol.encode_request(number, "now" if number % 2 else "echo"))

    replies: set[int] = set()
    while len(replies) < PIPELINED:
        message = await receive(served)
        if "event" not in message:
            replies.add(message["result"]["n"])

    assert replies == set(range(1, PIPELINED + 1))


async def test_immediate_protocol_error_reply(served):
    await served.send(protocol.encode_request(4, "refused"))

    reply = await receive(served)

    assert reply["id"] == 4
    assert reply["ok"] is False
    assert reply["error"]["code"] == protocol.REFUSED


async def test_invalid_handler_value_internal_error(served):
    await served.send(protocol.encode_request(5, "invalid"))
    await served.send(protocol.encode_request(6, "now"))

    first = await receive(served)
    second = await receive(served)

    assert first["id"] == 5
    assert first["error"]["code"] == protocol.INTERNAL
    assert second["result"]["n"] == 6
