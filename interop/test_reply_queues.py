"""Request/reply through temporary queues, as RabbitMQ defines them: a SEND with
`reply-to:/temp-queue/<name>` reaches its receivers with `reply-to` rewritten to a
private `/reply-queue/...` destination; what is sent there reaches the requester on
the subscription id `/temp-queue/<name>` without any SUBSCRIBE. stompkit's own
choices (the 128-bit hexadecimal name, ERROR for a SUBSCRIBE to a reply queue,
`/temp-topic/`) are tagged `stompkit_only`.
"""

import pytest

from support import VERSIONS, queue_name, unique
from tags import portable, stompkit_only


def ask(requester, responder, queue, reply_to, body="ask"):
    """`requester` sends a request; `responder` (subscribed to `queue`) gets it."""
    requester.send(queue, body, **{"reply-to": reply_to})
    messages = responder.wait_body(body)
    return [m for m in messages if m.body == body][-1]


def setup(client, version="1.2"):
    queue = queue_name()
    responder = client("1.2")
    responder.subscribe(queue)
    requester = client(version)
    return queue, requester, responder


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_a_reply_reaches_the_requester_on_its_temp_queue_subscription(client, version):
    queue, requester, responder = setup(client, version)
    name = unique("answers")
    request = ask(requester, responder, queue, f"/temp-queue/{name}")
    reply_to = request.headers["reply-to"]
    assert reply_to.startswith("/reply-queue/"), request.headers
    responder.send(reply_to, "the answer", **{"correlation-id": "c-1"})
    messages = requester.wait_body("the answer")
    reply = messages[-1]
    assert reply.headers["subscription"] == f"/temp-queue/{name}", reply.headers
    assert reply.headers.get("correlation-id") == "c-1", reply.headers
    assert reply.headers["destination"] != f"/temp-queue/{name}", reply.headers


@portable
def test_one_name_is_one_reply_queue_per_connection(client):
    queue, one, responder = setup(client)
    two = client("1.2")
    first = ask(one, responder, queue, "/temp-queue/a", "1").headers["reply-to"]
    again = ask(one, responder, queue, "/temp-queue/a", "2").headers["reply-to"]
    other = ask(two, responder, queue, "/temp-queue/a", "3").headers["reply-to"]
    assert first == again
    assert first != other
    responder.send(other, "for two")
    two.wait_body("for two")
    assert all(m.body != "for two" for m in one.settle())


@stompkit_only
def test_reply_queue_names_are_128_random_bits(client):
    queue, requester, responder = setup(client)
    reply_to = ask(requester, responder, queue, "/temp-queue/x").headers["reply-to"]
    secret = reply_to.removeprefix("/reply-queue/")
    assert len(secret) == 32 and all(c in "0123456789abcdef" for c in secret), reply_to


@stompkit_only
def test_nobody_may_subscribe_to_a_reply_queue(client):
    queue, requester, responder = setup(client)
    reply_to = ask(requester, responder, queue, "/temp-queue/x").headers["reply-to"]
    thief = client("1.2")
    thief.subscribe(reply_to, wait=False)
    thief.rec.wait_for(lambda: thief.rec.errors, "an ERROR frame")
    assert thief.rec.errors[0].headers["message"] == "reply destinations cannot be subscribed to"


@stompkit_only
def test_temp_topics_reply_on_their_subscription_id(client):
    queue, requester, responder = setup(client)
    reply_to = ask(requester, responder, queue, "/temp-topic/news").headers["reply-to"]
    assert reply_to.startswith("/reply-topic/"), reply_to
    responder.send(reply_to, "update")
    reply = requester.wait_body("update")[-1]
    assert reply.headers["subscription"] == "/temp-topic/news", reply.headers
