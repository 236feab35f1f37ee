"""stompkit-broker's answers to invalid frames (S4, S5, C4): ERROR with `message`, `receipt-id`, then close."""

import pytest

from support import VERSIONS
from tags import stompkit_only


def expect_error_and_close(c, rid):
    c.rec.wait_for(lambda: c.rec.errors, "an ERROR frame")
    error = c.rec.errors[0]
    assert error.headers.get("message"), error.headers  # S4: short description
    assert error.headers.get("receipt-id") == rid, error.headers  # S4: names the offending frame
    c.rec.wait_for(lambda: c.rec.disconnected, "the server to close the connection")  # S4: then close
    return error


@stompkit_only
@pytest.mark.parametrize("version", VERSIONS)
def test_send_without_destination(client, version):
    c = client(version)
    rid = c.receipt()
    c.conn.send_frame("SEND", {"receipt": rid}, "no destination")
    error = expect_error_and_close(c, rid)
    assert "destination" in error.headers["message"], error.headers


@stompkit_only
def test_nack_in_1_0_is_an_unknown_command(client):
    c = client("1.0")
    rid = c.receipt()
    c.conn.send_frame("NACK", {"message-id": "1", "receipt": rid})
    expect_error_and_close(c, rid)


@stompkit_only
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_commit_of_unknown_transaction(client, version):
    c = client(version)
    rid = c.receipt()
    c.conn.send_frame("COMMIT", {"transaction": "never-begun", "receipt": rid})
    error = expect_error_and_close(c, rid)
    assert "transaction" in error.headers["message"], error.headers
