"""Durable messaging: persistent messages with receipts, durable topic subscriptions
(ActiveMQ's convention: CONNECT `client-id` + SUBSCRIBE `activemq.subscriptionName`;
RabbitMQ's: SUBSCRIBE `durable:true` + `auto-delete:false` + `id`), expiry
(`expiration` in ms from now, `expires` in ms since the epoch) and dead letters
(`/queue/<name>.dlq`).

The broker stays up here; crashes and restarts are tested in
crates/broker/tests/durable.rs. `cargo xtask interop` starts the broker with a fresh
data directory and `STOMPKIT_DESTINATIONS_MAX_DELIVERIES=3`, and tells the suite so
with `STOMPKIT_INTEROP_MAX_DELIVERIES=3`; against any other server the suite assumes
stompkit's default, 10.
"""

import os
import time

import pytest

from support import VERSIONS, VERSIONS_11_UP, queue_name, topic_name, unique
from tags import portable, single_node, stompkit_only

MAX_DELIVERIES = int(os.environ.get("STOMPKIT_INTEROP_MAX_DELIVERIES", "10"))
CONVENTIONS = ["activemq", "rabbitmq"]


def bodies(messages):
    return [m.body for m in messages]


def remaining(client, queue):
    """What a fresh auto-ack consumer gets from `queue`, after a marker proved the rest is routed."""
    client("1.2").send(queue, "marker")
    c = client("1.2")
    c.subscribe(queue)
    c.wait_body("marker")
    return [b for b in bodies(c.settle()) if b != "marker"]


def redelivered(message):
    return message.headers.get("redelivered") == "true"


class Durable:
    """One durable subscription's identity on a fresh topic, in one convention."""

    def __init__(self, convention):
        self.convention = convention
        self.topic = topic_name()
        self.client_id = unique("client")
        self.name = unique("durable")
        self.sub_id = unique("sub")

    def connect(self, client):
        """A connection of the subscriber (with `client-id` in ActiveMQ's convention)."""
        headers = {"client-id": self.client_id} if self.convention == "activemq" else {}
        return client("1.2", connect_headers=headers)

    def headers(self):
        if self.convention == "activemq":
            return {"activemq.subscriptionName": self.name}
        return {"durable": "true", "auto-delete": "false"}

    def subscribe(self, c, wait=True):
        return c.subscribe(self.topic, sub_id=self.sub_id, wait=wait, **self.headers())

    def unsubscribe_for_good(self, c):
        if self.convention == "activemq":
            c.unsubscribe(self.sub_id, **{"activemq.subscriptionName": self.name})
        else:
            c.unsubscribe(self.sub_id, durable="true")


# ---------------------------------------------------------------- persistent messages


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_persistent_messages_with_receipts_are_consumed_and_acked(client, version):
    queue = queue_name()
    sent = [f"p{i}" for i in range(3)]
    pub = client(version)
    for body in sent:
        pub.send(queue, body, persistent="true", **{"x-order": body})  # waits for each RECEIPT
    c = client(version)
    c.subscribe(queue, ack="client" if version == "1.0" else "client-individual")
    got = c.wait_messages(3)
    assert bodies(got) == sent
    assert [m.headers.get("x-order") for m in got] == sent
    for m in got:
        c.ack(m)
    c.disconnect()
    assert remaining(client, queue) == []


@stompkit_only
def test_an_unacked_persistent_message_comes_back_redelivered(client):
    queue = queue_name()
    client("1.2").send(queue, "again", persistent="true")
    c = client("1.2")
    c.subscribe(queue, ack="client-individual")
    first = c.wait_messages(1)[0]
    assert not redelivered(first), first.headers
    c.drop()
    d = client("1.2")
    d.subscribe(queue, ack="client-individual")
    again = d.wait_messages(1)[0]
    assert again.body == "again"
    assert again.headers.get("message-id") == first.headers.get("message-id"), again.headers
    assert redelivered(again), again.headers
    d.ack(again)


# ---------------------------------------------------------------- durable subscriptions


@stompkit_only
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_a_durable_subscription_keeps_messages_while_the_subscriber_is_away(client, convention):
    d = Durable(convention)
    sub = d.connect(client)
    d.subscribe(sub)
    sub.disconnect()
    pub = client("1.2")
    pub.send(d.topic, "while-away-1", persistent="true")
    pub.send(d.topic, "while-away-2", persistent="true")
    back = d.connect(client)
    d.subscribe(back)
    back.wait_messages(2)
    pub.send(d.topic, "live", persistent="true")
    back.wait_body("live")
    got = back.settle()
    assert bodies(got) == ["while-away-1", "while-away-2", "live"]
    assert all(m.headers.get("subscription") == d.sub_id for m in got), [m.headers for m in got]


@stompkit_only
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_a_plain_unsubscribe_keeps_the_durable_subscription(client, convention):
    d = Durable(convention)
    sub = d.connect(client)
    d.subscribe(sub)
    sub.unsubscribe(d.sub_id)  # without the durable headers: only detaches
    pub = client("1.2")
    pub.send(d.topic, "kept", persistent="true")
    assert bodies(sub.settle()) == []
    d.subscribe(sub)
    sub.wait_body("kept")
    assert bodies(sub.settle()) == ["kept"]


@stompkit_only
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_unsubscribing_with_the_durable_headers_removes_it_for_good(client, convention):
    d = Durable(convention)
    sub = d.connect(client)
    d.subscribe(sub)
    sub.unsubscribe(d.sub_id)
    pub = client("1.2")
    pub.send(d.topic, "kept", persistent="true")
    d.subscribe(sub)
    sub.wait_body("kept")  # it is durable ...
    d.unsubscribe_for_good(sub)  # ... until removed
    pub.send(d.topic, "gone", persistent="true")
    d.subscribe(sub)  # a new, empty subscription
    pub.send(d.topic, "fresh", persistent="true")
    sub.wait_body("fresh")
    assert bodies(sub.settle()) == ["kept", "fresh"]


@stompkit_only
@single_node(
    "one subscriber at a time is enforced by the node holding it; in cluster mode a second "
    "subscriber on another node shares the durable subscription's messages instead (the README "
    "says so under Cluster mode)"
)
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_a_second_subscriber_to_an_active_durable_subscription_gets_an_error(client, convention):
    d = Durable(convention)
    holder = d.connect(client)
    d.subscribe(holder)
    intruder = d.connect(client)
    d.subscribe(intruder, wait=False)
    intruder.rec.wait_for(lambda: intruder.rec.errors, "an ERROR for the second subscriber")
    error = intruder.rec.errors[0]
    assert "durable subscription" in error.headers.get("message", ""), error.headers
    pub = client("1.2")
    pub.send(d.topic, "still-the-holders", persistent="true")
    holder.wait_body("still-the-holders")


# ---------------------------------------------------------------- expiry


@stompkit_only
@pytest.mark.parametrize("header", ["expiration", "expires"])
def test_expired_messages_are_not_delivered_nor_dead_lettered(client, header):
    queue = queue_name()
    if header == "expiration":  # RabbitMQ: milliseconds from now
        short, long, never = "300", "600000", None
    else:  # ActiveMQ: milliseconds since the epoch, 0 = never
        now = int(time.time() * 1000)
        short, long, never = str(now + 300), str(now + 600_000), "0"
    pub = client("1.2")
    pub.send(queue, "short", persistent="true", **{header: short})
    pub.send(queue, "long", persistent="true", **{header: long})
    if never is not None:
        pub.send(queue, "never", persistent="true", **{header: never})
    pub.send(queue, "plain", persistent="true")
    time.sleep(1.0)
    expected = ["long", "plain"] if never is None else ["long", "never", "plain"]
    assert remaining(client, queue) == expected
    assert remaining(client, queue + ".dlq") == []


# ---------------------------------------------------------------- dead letters


@stompkit_only
@pytest.mark.parametrize("version", VERSIONS_11_UP)
def test_a_nack_with_requeue_false_dead_letters_the_message(client, version):
    queue = queue_name()
    client("1.2").send(queue, "poison", persistent="true", **{"x-trace": "42"})
    c = client(version)
    c.subscribe(queue, ack="client-individual")
    m = c.wait_messages(1)[0]
    c.nack(m, requeue="false")
    dlq = client("1.2")
    dlq.subscribe(queue + ".dlq")
    dead = dlq.wait_messages(1)[0]
    assert dead.body == "poison"
    assert dead.headers.get("original-destination") == queue, dead.headers
    assert dead.headers.get("delivery-count") == "1", dead.headers
    assert dead.headers.get("dead-letter-reason") == "nack", dead.headers
    assert dead.headers.get("x-trace") == "42", dead.headers
    assert bodies(c.settle()) == ["poison"]  # not redelivered to the queue's consumer
    c.disconnect()  # so that the next consumer of `queue` gets everything left
    assert remaining(client, queue) == []


@stompkit_only
def test_the_last_allowed_delivery_nacked_is_dead_lettered(client):
    # MAX_DELIVERIES: 3 with the broker `cargo xtask interop` starts, else stompkit's default 10.
    queue = queue_name()
    client("1.2").send(queue, "m", persistent="true")
    c = client("1.2")
    c.subscribe(queue, ack="client-individual")
    for n in range(1, MAX_DELIVERIES + 1):
        m = c.wait_messages(n)[n - 1]
        assert m.body == "m"
        assert redelivered(m) == (n > 1), (n, m.headers)
        c.nack(m)
    dlq = client("1.2")
    dlq.subscribe(queue + ".dlq")
    dead = dlq.wait_messages(1)[0]
    assert dead.body == "m"
    assert dead.headers.get("original-destination") == queue, dead.headers
    assert dead.headers.get("delivery-count") == str(MAX_DELIVERIES), dead.headers
    assert dead.headers.get("dead-letter-reason") == "max-deliveries", dead.headers
    assert len(c.settle()) == MAX_DELIVERIES  # no delivery after the last NACK
