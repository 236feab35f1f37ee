"""Receipts (V9, S3): every client frame with `receipt` is answered, in order, with its id."""

import pytest

from support import VERSIONS, queue_name, topic_name, unique
from tags import portable, stompkit_only


def send_all_kinds(c, version):
    """Sends one frame of each kind with a receipt, back to back; returns the ids in order."""
    topic, queue = topic_name(), queue_name()
    ids = [unique(kind) for kind in ("subscribe", "send", "unsubscribe", "begin", "commit", "begin", "abort")]
    if version == "1.0":
        c.conn.subscribe(topic, id="s1", headers={"receipt": ids[0]})
    else:
        c.conn.subscribe(topic, "s1", headers={"receipt": ids[0]})
    c.conn.send(queue, "body", headers={"receipt": ids[1]})
    if version == "1.0":
        c.conn.unsubscribe(id="s1", headers={"receipt": ids[2]})
    else:
        c.conn.unsubscribe("s1", headers={"receipt": ids[2]})
    c.conn.begin("tx-1", headers={"receipt": ids[3]})
    c.conn.commit("tx-1", headers={"receipt": ids[4]})
    c.conn.begin("tx-2", headers={"receipt": ids[5]})
    c.conn.abort("tx-2", headers={"receipt": ids[6]})
    return ids


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_every_frame_kind_gets_its_receipt(client, version):
    c = client(version)
    ids = send_all_kinds(c, version)
    c.rec.wait_for(lambda: len(c.rec.receipts) >= len(ids), f"{len(ids)} RECEIPTs")
    # Each id comes back exactly once. (Order is not portable: RabbitMQ answers a SEND
    # after it was confirmed, possibly after later frames' receipts.)
    assert sorted(c.rec.receipts) == sorted(ids)
    rid = c.disconnect()  # DISCONNECT's receipt (C7) comes last
    assert c.rec.receipts[-1] == rid
    assert not c.rec.errors


@stompkit_only
@pytest.mark.parametrize("version", VERSIONS)
def test_receipts_come_back_in_frame_order(client, version):
    # S3: a RECEIPT acknowledges its frame and everything before it; stompkit answers in order.
    c = client(version)
    ids = send_all_kinds(c, version)
    c.rec.wait_for(lambda: len(c.rec.receipts) >= len(ids), f"{len(ids)} RECEIPTs")
    assert c.rec.receipts == ids


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_receipt_for_ack(client, version):
    queue = queue_name()
    client("1.2").send(queue, "m0")
    c = client(version)
    c.subscribe(queue, ack="client")
    c.ack(c.wait_messages(1)[0])  # waits for the ACK's RECEIPT
    assert len(c.rec.receipts) == 2  # SUBSCRIBE's and ACK's
