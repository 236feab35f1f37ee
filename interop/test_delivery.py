"""Topic fan-out and queue delivery (C1, C2, C5, S1)."""

import pytest

from support import VERSIONS, queue_name, topic_name, wait_until
from tags import portable, single_node, stompkit_only


def bodies(messages):
    return [m.body for m in messages]


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_topic_fans_out_to_every_subscriber_in_order(client, version):
    topic = topic_name()
    subs = [client(version), client(version)]
    sub_ids = [s.subscribe(topic) for s in subs]
    pub = client(version)
    sent = [f"m{i}" for i in range(5)]
    for body in sent:
        pub.send(topic, body)
    for s, sub_id in zip(subs, sub_ids):
        got = s.wait_messages(len(sent))
        assert bodies(got) == sent
        ids = [m.headers["message-id"] for m in got]
        assert all(ids) and len(set(ids)) == len(ids), ids  # S1: unique message-id
        for m in got:
            assert m.headers["destination"] == topic  # S1
            if version != "1.0":
                assert m.headers["subscription"] == sub_id  # S1: the SUBSCRIBE's id
    for s in subs:
        assert bodies(s.settle()) == sent  # no duplicates


@portable
def test_topic_reaches_subscribers_of_every_version(client):
    topic = topic_name()
    subs = {v: client(v) for v in VERSIONS}
    for s in subs.values():
        s.subscribe(topic)
    for sender_version in VERSIONS:
        client(sender_version).send(topic, f"from {sender_version}")
    expected = [f"from {v}" for v in VERSIONS]
    for v, s in subs.items():
        assert bodies(s.wait_messages(3)) == expected, v


@portable
def test_topic_does_not_keep_messages_for_later_subscribers(client):
    topic = topic_name()
    pub = client("1.2")
    pub.send(topic, "before")
    sub = client("1.2")
    sub.subscribe(topic)
    pub.send(topic, "after")
    sub.wait_body("after")
    assert bodies(sub.settle()) == ["after"]


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_queue_keeps_messages_until_a_subscriber_comes(client, version):
    queue = queue_name()
    pub = client(version)
    sent = [f"q{i}" for i in range(3)]
    for body in sent:
        pub.send(queue, body)
    sub = client(version)
    sub.subscribe(queue)
    got = sub.wait_messages(3)
    assert bodies(got) == sent
    assert all(m.headers["destination"] == queue for m in got)
    assert bodies(sub.settle()) == sent


@portable
def test_queue_gives_each_message_to_exactly_one_subscriber(client):
    queue = queue_name()
    subs = [client("1.2"), client("1.1")]
    for s in subs:
        s.subscribe(queue)
    pub = client("1.2")
    sent = [f"w{i}" for i in range(20)]
    for body in sent:
        pub.send(queue, body)
    wait_until(lambda: sum(len(x.rec.messages) for x in subs) >= len(sent), "20 deliveries in total")
    got = [b for s in subs for b in bodies(s.settle())]
    assert sorted(got) == sorted(sent)  # every message once, none twice


@stompkit_only
@single_node(
    "round-robin is one node's order among its own consumers; in cluster mode each node pulls "
    "a window of messages from JetStream for its consumers, so the split between consumers on "
    "different nodes is JetStream's (each message still goes to exactly one consumer: "
    "test_queue_gives_each_message_to_exactly_one_subscriber runs across nodes)"
)
def test_queue_round_robins_between_subscribers(client):
    queue = queue_name()
    subs = [client("1.2"), client("1.2")]
    for s in subs:
        s.subscribe(queue)
    pub = client("1.2")
    for i in range(10):
        pub.send(queue, f"r{i}")
    wait_until(lambda: sum(len(x.rec.messages) for x in subs) >= 10, "10 deliveries in total")
    counts = [len(s.settle()) for s in subs]
    assert counts == [5, 5], counts


@portable
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_unsubscribe_stops_delivery(client, version):
    topic = topic_name()
    sub = client(version)
    gone = sub.subscribe(topic)
    stays = sub.subscribe(topic)
    sub.unsubscribe(gone)
    client(version).send(topic, "after unsubscribe")
    sub.wait_body("after unsubscribe")
    got = sub.settle()
    assert [m.headers["subscription"] for m in got] == [stays]


@portable
def test_unsubscribe_1_0(client):
    topic = topic_name()
    sub = client("1.0")
    sub_id = sub.subscribe(topic)
    sub.unsubscribe(sub_id)
    marker_topic = topic_name()
    sub.subscribe(marker_topic)
    pub = client("1.0")
    pub.send(topic, "dropped")
    pub.send(marker_topic, "marker")
    sub.wait_body("marker")
    assert bodies(sub.settle()) == ["marker"]
