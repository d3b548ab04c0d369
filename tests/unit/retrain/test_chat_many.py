"""chat_many against a server that drops connections before answering: a dropped
connection is sent again (as the openai SDK does); one that never answers is a clear
EvaluationError, not a hang."""

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from retrain.evaluate import CONNECTION_RETRIES, EvaluationError, chat_many

ANSWER = {"choices": [{"message": {"role": "assistant", "content": "hi"}}]}


@contextmanager
def server(drop_first: int) -> Iterator[tuple[str, list[int]]]:
    """A raw HTTP/1.1 server: the first `drop_first` requests are read and the connection
    closed without a byte back, as a server closing an idle connection does."""
    seen: list[int] = []
    loop = asyncio.new_event_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            seen.append(length)
            if len(seen) <= drop_first:
                writer.close()
                return
            body = json.dumps(ANSWER).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()

    started = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    port = started.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_a_connection_dropped_before_the_answer_is_sent_again() -> None:
    with server(drop_first=CONNECTION_RETRIES) as (url, seen):
        bodies = chat_many(url, "m", [[{"role": "user", "content": "hello"}]], 8, 1)
    assert bodies == [ANSWER]
    assert len(seen) == CONNECTION_RETRIES + 1


def test_a_server_that_never_answers_is_an_evaluation_error() -> None:
    with server(drop_first=100) as (url, seen), pytest.raises(EvaluationError) as caught:
        chat_many(url, "m", [[{"role": "user", "content": "hello"}]], 8, 1)
    assert "did not answer" in str(caught.value)
    assert len(seen) == CONNECTION_RETRIES + 1, "a bounded number of tries"
