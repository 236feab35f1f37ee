"""Bodies: binary with NULs and content-length (F8-F10), UTF-8 text (F11, F12)."""

import random

import pytest

from support import VERSIONS, queue_name, topic_name
from tags import portable

TEXT = "Grüße aus Köln — 日本語のテキスト — emoji 🎉🚀 — ĀāĂă"


def relay(client, version, body, auto_content_length=True, content_type=None, decode=False, **headers):
    topic = topic_name()
    sub = client(version, auto_decode=decode)
    sub.subscribe(topic)
    pub = client(version, auto_content_length=auto_content_length)
    pub.send(topic, body, content_type=content_type, **headers)
    return sub.wait_messages(1)[0]


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_binary_body_with_nuls(client, version):
    body = b"\x00start" + bytes(range(256)) * 4 + b"\x00\x00middle\x00" + b"end\x00"
    got = relay(client, version, body)
    assert got.body == body
    assert int(got.headers["content-length"]) == len(body)  # F9: a body with NULs needs it


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_body_of_only_nuls(client, version):
    body = b"\x00" * 17
    got = relay(client, version, body)
    assert got.body == body


@portable
def test_large_binary_body(client):
    body = random.Random(7).randbytes(256 * 1024) + b"\x00"
    assert body.count(b"\x00") > 100
    got = relay(client, "1.2", body)
    assert len(got.body) == len(body)
    assert got.body == body


@portable
def test_binary_bodies_keep_their_boundaries_on_a_queue(client):
    # Several NUL-laden frames back to back: each must be cut at its content-length (F8).
    queue = queue_name()
    bodies = [bytes([i]) * i + b"\x00" + bytes([255 - i]) * (3 * i) for i in range(1, 8)]
    pub = client("1.2")
    for b in bodies:
        pub.send(queue, b)
    sub = client("1.2", auto_decode=False)
    sub.subscribe(queue)
    assert [m.body for m in sub.wait_messages(len(bodies))] == bodies


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_empty_body(client, version):
    got = relay(client, version, "", decode=True)
    assert got.body == ""


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_utf8_body_with_content_type(client, version):
    content_type = "text/plain;charset=utf-8"
    got = relay(client, version, TEXT, content_type=content_type, decode=True)
    assert got.body == TEXT
    assert got.headers.get("content-type") == content_type
    assert int(got.headers["content-length"]) == len(TEXT.encode("utf-8"))  # octets, not characters


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_utf8_body_without_content_length(client, version):
    # F10: without content-length the first NUL ends the frame; text has none.
    got = relay(client, version, TEXT, auto_content_length=False, decode=True)
    assert got.body == TEXT
