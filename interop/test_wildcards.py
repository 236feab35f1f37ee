"""Wildcard topic subscriptions: destination names are segments separated by `.`;
in a SUBSCRIBE to `/topic/...`, `*` matches exactly one segment and `#` zero or more
(RabbitMQ; the `portable` tests here pass against RabbitMQ's STOMP plugin too), `>`
one or more as the last segment (ActiveMQ). A MESSAGE names the destination it was
sent to. stompkit's own refusals (wildcard SENDs, queue wildcards) are
`stompkit_only`.
"""

import pytest

from support import VERSIONS, unique
from tags import portable, stompkit_only


def bodies(messages):
    return [m.body for m in messages]


def by_subscription(messages):
    """{subscription id: [body, ...]} in arrival order."""
    out = {}
    for m in messages:
        out.setdefault(m.headers.get("subscription"), []).append(m.body)
    return out


def wait_error(c, what):
    c.rec.wait_for(lambda: c.rec.errors, f"an ERROR for {what}")
    return c.rec.errors[0]


def publish_all(pub, root, names):
    """Sends each `/topic/<root>.<name>` (or `/topic/<root>` for "") its own name as body."""
    for name in names:
        pub.send(f"/topic/{root}.{name}" if name else f"/topic/{root}", name or "<root>")


# ---------------------------------------------------------------- wildcards


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_star_matches_exactly_one_segment(client, version):
    root = unique("wild")
    sub = client(version)
    sub.subscribe(f"/topic/{root}.*", sub_id="star")
    pub = client("1.2")
    publish_all(pub, root, ["", "a", "b", "a.b"])
    pub.send(f"/topic/{root}.end", "end")
    got = sub.wait_body("end")
    assert bodies(got) == ["a", "b", "end"]
    assert all(m.headers.get("subscription") == "star" for m in got), [m.headers for m in got]


@portable
def test_hash_matches_zero_or_more_segments_anywhere(client):
    root = unique("wild")
    sub = client("1.2")
    sub.subscribe(f"/topic/{root}.#", sub_id="tail")
    sub.subscribe(f"/topic/{root}.#.c", sub_id="middle")
    sub.subscribe(f"/topic/{root}.x.#", sub_id="deeper")
    pub = client("1.2")
    publish_all(pub, root, ["", "c", "b.c", "b.b.c", "x", "x.y"])
    pub.send(f"/topic/{root}.end", "end")
    sub.wait_body("end")
    got = by_subscription(sub.settle())
    assert got["tail"] == ["<root>", "c", "b.c", "b.b.c", "x", "x.y", "end"]
    assert got["middle"] == ["c", "b.c", "b.b.c"]
    assert got["deeper"] == ["x", "x.y"]


@portable
@pytest.mark.parametrize("version", VERSIONS)
def test_a_message_through_a_wildcard_names_the_destination_it_was_sent_to(client, version):
    root = unique("wild")
    sub = client(version)
    sub.subscribe(f"/topic/{root}.*")
    pub = client("1.2")
    pub.send(f"/topic/{root}.lobby", "hello")
    got = sub.wait_messages(1)
    assert got[0].headers.get("destination") == f"/topic/{root}.lobby", got[0].headers


@portable
def test_a_wildcard_and_a_literal_subscription_each_get_the_message(client):
    root = unique("wild")
    sub = client("1.2")
    sub.subscribe(f"/topic/{root}.*", sub_id="wild")
    sub.subscribe(f"/topic/{root}.room", sub_id="literal")
    pub = client("1.2")
    pub.send(f"/topic/{root}.room", "once-each")
    sub.wait_messages(2)
    assert by_subscription(sub.settle()) == {"wild": ["once-each"], "literal": ["once-each"]}


@stompkit_only
def test_greater_than_matches_one_or_more_trailing_segments(client):
    root = unique("wild")
    sub = client("1.2")
    sub.subscribe(f"/topic/{root}.>")
    pub = client("1.2")
    publish_all(pub, root, ["", "a", "a.b", "a.b.c"])
    pub.send(f"/topic/{root}.end", "end")
    assert bodies(sub.wait_body("end")) == ["a", "a.b", "a.b.c", "end"]


@stompkit_only
def test_a_segment_that_only_contains_a_wildcard_character_is_literal(client):
    root = unique("wild")
    sub = client("1.2")
    sub.subscribe(f"/topic/{root}.a*b")
    pub = client("1.2")
    publish_all(pub, root, ["axb", "ab", "a*b"])
    assert bodies(sub.wait_body("a*b")) == ["a*b"]
    assert bodies(sub.settle()) == ["a*b"]


@stompkit_only
@pytest.mark.parametrize("destination", ["/topic/{}.*", "/topic/{}.#", "/topic/{}.>"])
def test_a_send_to_a_wildcard_destination_gets_an_error(client, destination):
    c = client("1.2")
    c.send(destination.format(unique("wild")), "nope", wait=False)
    error = wait_error(c, "a wildcard SEND")
    assert "wildcard" in error.headers.get("message", ""), error.headers


@stompkit_only
def test_a_wildcard_subscription_to_a_queue_gets_an_error(client):
    c = client("1.2")
    c.subscribe(f"/queue/{unique('wild')}.*", wait=False)
    error = wait_error(c, "a wildcard SUBSCRIBE to a queue")
    assert "wildcard" in error.headers.get("message", ""), error.headers
