"""User-defined headers through the broker: escaping per version (E1-E5, C1, F5).

Each version carries what it can: 1.2 escapes `:`, LF, CR and `\\`; 1.1 the
same without CR; 1.0 has no escaping, so only values without LF or CR.

Backslashes in 1.0 values are `stompkit_only`: E5 says 1.0 has no escaping,
but RabbitMQ 3.10 unescapes 1.0 frames anyway (it closes the connection on
`end\\` + LF as a bad escape). stomp.py unescapes every received header value
whatever the version, so the 1.0 values contain no sequence that 1.1/1.2 would
decode (`\\n`, `\\c`, `\\r`, `\\\\`); `\\t` and a trailing backslash are safe.
"""

import pytest

from support import VERSIONS, topic_name
from tags import portable, stompkit_only

VALUES = {
    "1.2": {
        "x-colon": "a:b:c",
        "x-newline": "line1\nline2",
        "x-backslash": "back\\slash",
        "x-cr": "carriage\rreturn",
        "x-mixed": "k:v\\w\nx:\r\\",
        "x-literal-escape": "a\\nb",  # the four characters a, \, n, b (not a newline)
        "x-url": "http://example.invalid:8080/p?q=1",
        "x-spaces": " padded value ",  # F14: never trimmed in 1.1+ (1.0 peers may trim)
    },
    "1.1": {
        "x-colon": "a:b:c",
        "x-newline": "line1\nline2",
        "x-backslash": "back\\slash",
        "x-mixed": "k:v\\w\nx:\\",
        "x-literal-escape": "a\\nb",
        "x-url": "http://example.invalid:8080/p?q=1",
        "x-spaces": " padded value ",
    },
    "1.0": {
        "x-colon": "a:b:c",
        "x-url": "http://example.invalid:8080/p?q=1",
    },
}

# Safe for a receiver of any version (no LF/CR, no backslash).
COMMON = VALUES["1.0"]

# Raw backslashes in 1.0 (E5), readable by stomp.py's 1.0 parser unchanged.
BACKSLASHES_1_0 = {
    "x-windows-path": "C:\\temp\\file",
    "x-trailing-backslash": "end\\",
    "x-colon": "a:b",
}


def exchange(client, sender_version, receiver_versions, headers):
    topic = topic_name()
    receivers = {v: client(v) for v in receiver_versions}
    for r in receivers.values():
        r.subscribe(topic)
    client(sender_version).send(topic, "with headers", **headers)
    return {v: r.wait_messages(1)[0] for v, r in receivers.items()}


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_escaped_header_values_round_trip(client, version):
    headers = VALUES[version]
    got = exchange(client, version, [version], headers)[version]
    for name, value in headers.items():
        assert got.headers.get(name) == value, (name, got.headers)


@portable
@pytest.mark.parametrize("sender", VERSIONS)
def test_header_values_cross_versions(client, sender):
    # The broker re-escapes for each receiver: a 1.0 sender's raw `:` and `\`
    # must reach a 1.2 receiver as `\c` and `\\` on the wire, and the reverse.
    got = exchange(client, sender, VERSIONS, COMMON)
    for receiver, message in got.items():
        for name, value in COMMON.items():
            assert message.headers.get(name) == value, (sender, receiver, name, message.headers)


@portable
def test_newline_value_from_1_1_reaches_1_2_and_back(client):
    value = "two\nlines:and\\more"
    got = exchange(client, "1.1", ["1.2"], {"x-v": value})
    assert got["1.2"].headers.get("x-v") == value
    got = exchange(client, "1.2", ["1.1"], {"x-v": value})
    assert got["1.1"].headers.get("x-v") == value


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_utf8_header_values(client, version):
    headers = {"x-greeting": "Grüße, 世界 🎉", "x-accents": "éàü"}
    got = exchange(client, version, [version], headers)[version]
    for name, value in headers.items():
        assert got.headers.get(name) == value


@portable
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_receipt_id_with_escaped_characters(client, version):
    c = client(version)
    rid = "receipt:with\\odd\nchars"
    c.conn.send(topic_name(), "x", headers={"receipt": rid})
    c.wait_receipt(rid)


@stompkit_only
@pytest.mark.parametrize("sender", VERSIONS)
def test_backslashes_to_and_from_1_0(client, sender):
    # E5: a 1.0 session neither escapes nor unescapes; the broker converts between versions.
    got = exchange(client, sender, VERSIONS, BACKSLASHES_1_0)
    for receiver, message in got.items():
        for name, value in BACKSLASHES_1_0.items():
            assert message.headers.get(name) == value, (sender, receiver, name, message.headers)


@stompkit_only
def test_value_a_1_0_receiver_cannot_carry_is_left_out(client):
    # Design: a header whose value holds LF is dropped from a 1.0 receiver's copy;
    # receivers of 1.1/1.2 get it intact.
    headers = {"x-multi": "line1\nline2", "x-plain": "ok"}
    got = exchange(client, "1.2", VERSIONS, headers)
    assert got["1.0"].headers.get("x-plain") == "ok"
    assert "x-multi" not in got["1.0"].headers, got["1.0"].headers
    for v in ("1.1", "1.2"):
        assert got[v].headers.get("x-multi") == "line1\nline2"
        assert got[v].headers.get("x-plain") == "ok"
