"""Acknowledgement modes, NACK and redelivery on queues (C3, C4, S2)."""

import pytest

from support import VERSIONS, VERSIONS_11_UP, queue_name
from tags import portable, stompkit_only


def bodies(messages):
    return [m.body for m in messages]


def fill(client, queue, n, prefix="m"):
    sent = [f"{prefix}{i}" for i in range(n)]
    pub = client("1.2")
    for body in sent:
        pub.send(queue, body)
    return sent


def remaining(client, queue):
    """What a fresh auto-ack consumer gets from `queue`, after a marker proved the rest is routed."""
    client("1.2").send(queue, "marker")
    c = client("1.2")
    c.subscribe(queue)
    c.wait_body("marker")
    return [b for b in bodies(c.settle()) if b != "marker"]


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_client_ack_is_cumulative(client, version):
    queue = queue_name()
    sent = fill(client, queue, 3)
    c = client(version)
    c.subscribe(queue, ack="client")
    got = c.wait_messages(3)
    assert bodies(got) == sent
    if version == "1.2":
        assert all(m.headers.get("ack") for m in got)  # S2
    c.ack(got[1])  # C3: acknowledges m0 and m1
    c.disconnect()  # m2 was never acknowledged: it goes back to the queue
    assert remaining(client, queue) == ["m2"]


@portable
@pytest.mark.parametrize("version", VERSIONS_11_UP)
def test_client_individual_ack_acknowledges_one_message(client, version):
    queue = queue_name()
    sent = fill(client, queue, 3)
    c = client(version)
    c.subscribe(queue, ack="client-individual")
    got = c.wait_messages(3)
    assert bodies(got) == sent
    if version == "1.2":
        assert all(m.headers.get("ack") for m in got)  # S2
    c.ack(got[0])
    c.ack(got[2])
    c.disconnect()
    assert remaining(client, queue) == ["m1"]


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_auto_ack_consumes(client, version):
    queue = queue_name()
    sent = fill(client, queue, 3)
    c = client(version)
    c.subscribe(queue, ack="auto")
    assert bodies(c.wait_messages(3)) == sent
    c.disconnect()
    assert remaining(client, queue) == []


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_unacked_messages_go_to_another_subscriber_when_the_connection_drops(client, version):
    queue = queue_name()
    sent = fill(client, queue, 2)
    c = client(version)
    c.subscribe(queue, ack="client")
    assert bodies(c.wait_messages(2)) == sent
    c.drop()  # no ACK at all, then the connection ends without DISCONNECT
    assert remaining(client, queue) == sent


@portable
@pytest.mark.parametrize("version", VERSIONS_11_UP)
def test_nack_puts_the_message_back(client, version):
    queue = queue_name()
    fill(client, queue, 1)
    c = client(version)
    c.subscribe(queue, ack="client-individual")
    first = c.wait_messages(1)[0]
    c.nack(first)
    again = c.wait_messages(2)[1]  # redelivered (requeued) to the only subscriber
    assert again.body == first.body == "m0"
    c.ack(again)
    c.disconnect()
    assert remaining(client, queue) == []


@stompkit_only
@pytest.mark.parametrize("version", VERSIONS_11_UP)
def test_nacked_message_comes_back_marked_redelivered(client, version):
    queue = queue_name()
    fill(client, queue, 1)
    c = client(version)
    c.subscribe(queue, ack="client-individual")
    first = c.wait_messages(1)[0]
    assert "redelivered" not in first.headers or first.headers["redelivered"] == "false"
    c.nack(first)
    again = c.wait_messages(2)[1]
    assert again.headers.get("redelivered") == "true", again.headers


@stompkit_only
def test_message_of_a_dropped_connection_comes_back_marked_redelivered(client):
    queue = queue_name()
    fill(client, queue, 1)
    c = client("1.2")
    c.subscribe(queue, ack="client")
    c.wait_messages(1)
    c.drop()
    d = client("1.2")
    d.subscribe(queue, ack="client")
    again = d.wait_messages(1)[0]
    assert again.body == "m0"
    assert again.headers.get("redelivered") == "true", again.headers
