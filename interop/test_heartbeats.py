"""Heart-beating (H1-H5): beats both ways keep an idle connection alive."""

import re
import time

import pytest

from support import topic_name
from tags import portable, stompkit_only

ASKED_MS = 200


@portable
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_idle_connection_with_heart_beats_both_ways(client, version):
    c = client(version, heartbeats=(ASKED_MS, ASKED_MS))
    offered = c.rec.connected.headers.get("heart-beat")
    assert offered and re.fullmatch(r"\d+,\d+", offered), offered  # H1
    sx, sy = (int(v) for v in offered.split(","))
    assert sx > 0 and sy > 0, f"server offers no heart-beats both ways: {offered}"
    # H3 as stomp.py computes it: (client->server, server->client) intervals in ms.
    send_ms, recv_ms = c.conn.heartbeats
    assert send_ms == max(ASKED_MS, sy) and recv_ms == max(ASKED_MS, sx)
    assert max(send_ms, recv_ms) <= 10_000, f"intervals too long to test: {c.conn.heartbeats}"

    # Stay idle for more than three intervals of the slower direction.
    idle = 4.5 * max(send_ms, recv_ms) / 1000
    time.sleep(idle)

    assert c.rec.heartbeat_timeouts == 0, "stomp.py saw no data from the server in time"
    assert not c.rec.disconnected and c.is_connected(), "the server closed an idle but beating connection"
    assert not c.rec.errors
    # Beats were seen: at least 3 of the ~4.5 intervals, each direction.
    assert c.rec.heartbeats_received >= 3, f"only {c.rec.heartbeats_received} beats from the server in {idle:.1f}s"
    assert c.rec.heartbeats_sent >= 3, f"stomp.py sent only {c.rec.heartbeats_sent} beats"

    # And the session still works.
    topic = topic_name()
    c.subscribe(topic)
    c.send(topic, "still alive")
    assert c.wait_messages(1)[0].body == "still alive"


@portable
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_server_beats_only(client, version):
    # H3: client sends none (cx = 0) but wants beats; the server must not expect any from it.
    c = client(version, heartbeats=(0, ASKED_MS))
    sx, _ = (int(v) for v in c.rec.connected.headers["heart-beat"].split(","))
    assert sx > 0
    send_ms, recv_ms = c.conn.heartbeats
    assert send_ms == 0 and recv_ms == max(ASKED_MS, sx)
    time.sleep(4.5 * recv_ms / 1000)
    assert c.rec.heartbeat_timeouts == 0
    assert c.rec.heartbeats_received >= 3
    assert c.rec.heartbeats_sent == 0
    assert not c.rec.disconnected and c.is_connected()


@stompkit_only
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_stompkit_mirrors_the_requested_interval(client, version):
    # xtask starts the broker with STOMPKIT_HEARTBEAT_MIN_MS=100, so 200 ms is within bounds.
    c = client(version, heartbeats=(ASKED_MS, ASKED_MS))
    assert c.rec.connected.headers.get("heart-beat") == f"{ASKED_MS},{ASKED_MS}"


@stompkit_only
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_stompkit_closes_a_peer_that_stops_beating(client, version):
    # H5: the server may declare a silent peer dead after its interval plus a margin.
    c = client(version, heartbeats=(ASKED_MS, ASKED_MS))
    send_ms, _ = c.conn.heartbeats
    c.conn.heartbeat_terminate_event.set()  # stomp.py's beat thread stops; the socket stays open
    started = time.monotonic()
    c.rec.wait_for(lambda: c.rec.disconnected, "the broker to close the silent connection",
                   timeout=10 * send_ms / 1000)
    assert time.monotonic() - started >= send_ms / 1000  # not before one interval passed
