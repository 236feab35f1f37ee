"""Connecting with each STOMP version (V1-V7) and disconnecting with a receipt (C7)."""

import re

import pytest

from support import VERSIONS
from tags import portable, stompkit_only


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_connect_and_disconnect_with_receipt(client, version):
    c = client(version)
    connected = c.rec.connected
    assert connected.cmd == "CONNECTED"
    if version == "1.0":
        # A 1.0 server does not know `version`; one that does must say 1.0 (V2).
        assert connected.headers.get("version", "1.0") == "1.0"
    else:
        # V3/V5: the client offered exactly one version, so that one is chosen.
        assert connected.headers["version"] == version
    assert c.is_connected()
    rid = c.disconnect()
    assert rid in c.rec.receipts
    assert not c.rec.errors


@portable
def test_connect_command_instead_of_stomp_1_2(client):
    # stomp.py sends STOMP by default in 1.1/1.2 (V7); here the classic CONNECT.
    c = client("1.2", connect=False)
    connected = c.connect(with_connect_command=True)
    assert connected.headers["version"] == "1.2"


@stompkit_only
@pytest.mark.parametrize("version", VERSIONS)
def test_connected_names_stompkit(client, version):
    c = client(version)
    headers = c.rec.connected.headers
    assert re.fullmatch(r"stompkit/\d+\.\d+\.\d+\S*", headers.get("server", "")), headers
    assert headers.get("session"), headers
