"""Transactions: BEGIN / COMMIT / ABORT (C6).

Frames inside a transaction are sent without waiting for their RECEIPT: when a
broker answers those is its own choice (RabbitMQ holds them until COMMIT), so
the suite only waits on the receipts of BEGIN, COMMIT, ABORT and plain frames.
"""

import pytest

from support import VERSIONS, queue_name, topic_name
from tags import portable, stompkit_only


def bodies(messages):
    return [m.body for m in messages]


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_commit_delivers_the_transaction_sends_in_order(client, version):
    topic = topic_name()
    sub = client(version)
    sub.subscribe(topic)
    pub = client(version)
    tx = pub.begin()
    pub.send(topic, "t1", transaction=tx, wait=False)
    pub.send(topic, "t2", transaction=tx, wait=False)
    pub.send(topic, "outside")  # not in the transaction: delivered at once
    sub.wait_body("outside")
    assert bodies(sub.settle()) == ["outside"]  # nothing of the open transaction yet
    pub.commit(tx)
    sub.wait_messages(3)
    assert bodies(sub.settle()) == ["outside", "t1", "t2"]


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_abort_discards_the_transaction_sends(client, version):
    topic = topic_name()
    sub = client(version)
    sub.subscribe(topic)
    pub = client(version)
    tx = pub.begin()
    pub.send(topic, "t1", transaction=tx, wait=False)
    pub.send(topic, "t2", transaction=tx, wait=False)
    pub.abort(tx)
    pub.send(topic, "after abort")
    sub.wait_body("after abort")
    assert bodies(sub.settle()) == ["after abort"]


@portable
def test_two_transactions_are_independent(client):
    queue = queue_name()
    pub = client("1.2")
    kept, dropped = pub.begin(), pub.begin()
    pub.send(queue, "kept", transaction=kept, wait=False)
    pub.send(queue, "dropped", transaction=dropped, wait=False)
    pub.abort(dropped)
    pub.commit(kept)
    pub.send(queue, "marker")
    sub = client("1.2")
    sub.subscribe(queue)
    sub.wait_body("marker")
    assert bodies(sub.settle()) == ["kept", "marker"]


@portable
def test_disconnect_aborts_an_open_transaction(client):
    queue = queue_name()
    pub = client("1.2")
    tx = pub.begin()
    pub.send(queue, "never", transaction=tx, wait=False)
    pub.disconnect()  # C6: an open transaction is aborted on DISCONNECT
    client("1.2").send(queue, "marker")
    sub = client("1.2")
    sub.subscribe(queue)
    sub.wait_body("marker")
    assert bodies(sub.settle()) == ["marker"]


@stompkit_only
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_ack_in_an_aborted_transaction_is_undone(client, version):
    queue = queue_name()
    client("1.2").send(queue, "m0")
    c = client(version)
    c.subscribe(queue, ack="client-individual")
    m = c.wait_messages(1)[0]
    tx = c.begin()
    c.ack(m, transaction=tx, wait=False)
    c.abort(tx)
    c.drop()  # the ACK never took effect: the message is still unacknowledged
    d = client("1.2")
    d.subscribe(queue)
    assert d.wait_messages(1)[0].body == "m0"


@stompkit_only
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_ack_in_a_committed_transaction_takes_effect(client, version):
    queue = queue_name()
    client("1.2").send(queue, "m0")
    c = client(version)
    c.subscribe(queue, ack="client-individual")
    m = c.wait_messages(1)[0]
    tx = c.begin()
    c.ack(m, transaction=tx, wait=False)
    c.commit(tx)
    c.drop()
    client("1.2").send(queue, "marker")
    d = client("1.2")
    d.subscribe(queue)
    d.wait_body("marker")
    assert bodies(d.settle()) == ["marker"]


@portable
def test_connection_loss_aborts_an_open_transaction(client):
    queue = queue_name()
    pub = client("1.2")
    tx = pub.begin()
    pub.send(queue, "never", transaction=tx, wait=False)
    pub.send(queue, "sync")  # its RECEIPT proves the transactional SEND was read too
    pub.drop()  # C6: ... or on connection failure
    client("1.2").send(queue, "marker")
    sub = client("1.2")
    sub.subscribe(queue)
    sub.wait_body("marker")
    assert bodies(sub.settle()) == ["sync", "marker"]
