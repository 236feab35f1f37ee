"""Thin test harness around stomp.py for the interop suite.

Owns: where the broker is (environment variables; with several nodes of a
clustered broker, which node each new connection goes to), a recording listener that
tests can wait on with a timeout, and a `Client` wrapper that hides the
per-version differences of stomp.py's API (ack/nack arguments, connect
arguments) so a test can be written once and parametrised by version.

It does not own any assertion about the broker: those live in the tests.

Environment:
  STOMP_HOST, STOMP_PORT   address of the broker under test (required port,
                           unless STOMPKIT_INTEROP_NODES is set)
  STOMPKIT_INTEROP_NODES   `host:port,host:port,...`: the nodes of one
                           clustered broker; each connection a test opens goes
                           to the next node, round-robin from the first node in
                           every test (see `next_address`)
  STOMP_LOGIN, STOMP_PASSCODE, STOMP_VHOST   optional CONNECT headers
                           (RabbitMQ reads `host` as the virtual host, so a
                           run against it sets STOMP_VHOST=/)
  STOMP_TIMEOUT            seconds to wait for any expected frame (default 5)
"""

import os
import threading
import time
import uuid

import stomp
import stomp.protocol


def _parse_nodes(text):
    """`host:port,host:port` -> [(host, port), ...] (empty for an empty text)."""
    nodes = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise RuntimeError(f"STOMPKIT_INTEROP_NODES: {item!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


NODES = _parse_nodes(os.environ.get("STOMPKIT_INTEROP_NODES", ""))
if NODES:
    HOST, PORT = NODES[0]
else:
    HOST = os.environ.get("STOMP_HOST", "127.0.0.1")
    try:
        PORT = int(os.environ["STOMP_PORT"])
    except (KeyError, ValueError) as exc:  # fail loudly: never run against a guessed address
        raise RuntimeError("set STOMP_PORT (and STOMP_HOST) to the broker under test") from exc
    NODES = [(HOST, PORT)]
# Several nodes of one clustered broker: publishers and subscribers of a test
# end up on different nodes, and delivery between them is asynchronous.
CLUSTER = len(NODES) > 1
LOGIN = os.environ.get("STOMP_LOGIN")
PASSCODE = os.environ.get("STOMP_PASSCODE")
VHOST = os.environ.get("STOMP_VHOST")
TIMEOUT = float(os.environ.get("STOMP_TIMEOUT", "5"))
# How long to keep listening for frames that must NOT arrive (after a marker
# proved that everything sent before it has been routed).
GRACE = 0.3

VERSIONS = ["1.0", "1.1", "1.2"]
VERSIONS_11_UP = ["1.1", "1.2"]


def unique(prefix):
    """A destination or id that no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def queue_name():
    return "/queue/" + unique("interop")


def topic_name():
    return "/topic/" + unique("interop")


_next_node = 0


def reset_nodes():
    """Starts the round-robin over: the next connection goes to the first node
    (conftest.py calls it before every test, so each test places its
    connections the same way whatever ran before it)."""
    global _next_node
    _next_node = 0
    _unconfirmed.clear()


def next_address():
    """The node for the next connection: round-robin over NODES (always the one
    node of a single-broker run)."""
    global _next_node
    address = NODES[_next_node % len(NODES)]
    _next_node += 1
    return address


# SUBSCRIBEs sent without waiting for their RECEIPT (cluster runs only):
# [(client, receipt id), ...].
_unconfirmed = []


def send_after_subscriptions():
    """In a cluster run, waits until every SUBSCRIBE the test sent without
    waiting is in place before a SEND goes out: a RECEIPT says the subscriber's
    node receives what other nodes publish (a subscription refused with an
    ERROR, or whose connection closed, is no longer waited for). Without this
    a SEND on another node right after such a SUBSCRIBE would race it."""
    while _unconfirmed:
        c, rid = _unconfirmed.pop()
        c.rec.wait_for(lambda: rid in c.rec.receipts or c.rec.errors or c.rec.disconnected,
                       f"RECEIPT {rid} for a SUBSCRIBE before a SEND on another node")


def wait_until(predicate, what, timeout=TIMEOUT):
    """Polls `predicate` (for conditions spanning several connections)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


class Recorder(stomp.ConnectionListener):
    """Records every event stomp.py reports, under one condition variable."""

    def __init__(self):
        self.cond = threading.Condition()
        self.connected = None
        self.messages = []
        self.receipts = []
        self.errors = []
        self.heartbeats_received = 0
        self.heartbeats_sent = 0
        self.heartbeat_timeouts = 0
        self.disconnected = False

    def _record(self, fn):
        with self.cond:
            fn()
            self.cond.notify_all()

    def on_connected(self, frame):
        self._record(lambda: setattr(self, "connected", frame))

    def on_message(self, frame):
        self._record(lambda: self.messages.append(frame))

    def on_receipt(self, frame):
        self._record(lambda: self.receipts.append(frame.headers.get("receipt-id")))

    def on_error(self, frame):
        self._record(lambda: self.errors.append(frame))

    def on_heartbeat(self):
        def bump():
            self.heartbeats_received += 1
        self._record(bump)

    def on_send(self, frame):
        # stomp.py sends a heart-beat as a Frame without a command.
        if frame.cmd is None:
            def bump():
                self.heartbeats_sent += 1
            self._record(bump)

    def on_heartbeat_timeout(self):
        def bump():
            self.heartbeat_timeouts += 1
        self._record(bump)

    def on_disconnected(self):
        self._record(lambda: setattr(self, "disconnected", True))

    def wait_for(self, predicate, what, timeout=TIMEOUT):
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; "
                    f"messages={[m.body for m in self.messages]!r} receipts={self.receipts!r} "
                    f"errors={[(e.headers, e.body) for e in self.errors]!r} "
                    f"disconnected={self.disconnected}"
                )

    def snapshot(self):
        with self.cond:
            return list(self.messages)


class Client:
    """One stomp.py connection of a given STOMP version plus its Recorder."""

    def __init__(self, version, heartbeats=(0, 0), auto_decode=True, auto_content_length=True):
        self.version = version
        # The next node of a cluster run (the broker of a single-node run).
        self.address = next_address()
        kwargs = dict(
            host_and_ports=[self.address],
            auto_decode=auto_decode,
            auto_content_length=auto_content_length,
            reconnect_attempts_max=1,
            timeout=TIMEOUT,
        )
        if version == "1.0":
            self.conn = stomp.StompConnection10(**kwargs)
        elif version == "1.1":
            self.conn = stomp.StompConnection11(heartbeats=heartbeats, vhost=VHOST, **kwargs)
        elif version == "1.2":
            self.conn = stomp.StompConnection12(heartbeats=heartbeats, vhost=VHOST, **kwargs)
        else:
            raise ValueError(version)
        self.rec = Recorder()
        self.conn.set_listener("recorder", self.rec)
        self._subscriptions = 0

    # -- connection -------------------------------------------------------

    def connect(self, with_connect_command=False, **headers):
        extra = {}
        if with_connect_command:
            assert self.version == "1.2", "stomp.py only sends CONNECT (not STOMP) on request in 1.2"
            extra["with_connect_command"] = True
        self.conn.connect(username=LOGIN, passcode=PASSCODE, wait=False, headers=headers, **extra)
        self.rec.wait_for(lambda: self.rec.connected is not None or self.rec.errors or self.rec.disconnected,
                          "CONNECTED")
        assert self.rec.connected is not None, (
            f"no CONNECTED; errors={[(e.headers, e.body) for e in self.rec.errors]!r}"
        )
        return self.rec.connected

    def _protocol(self):
        return stomp.protocol.Protocol10 if self.version == "1.0" else stomp.protocol.Protocol11

    def disconnect(self):
        """DISCONNECT with a receipt; returns once the RECEIPT arrived (C7)."""
        rid = unique("disconnect")
        # Call the protocol method directly: StompConnectionXX.disconnect would then
        # block without a timeout in transport.stop() if the broker misbehaved.
        self._protocol().disconnect(self.conn, receipt=rid)
        self.rec.wait_for(lambda: rid in self.rec.receipts, f"RECEIPT {rid} for DISCONNECT")
        self.close()
        return rid

    def close(self):
        """Best-effort teardown that never blocks for long."""
        try:
            if self.conn.transport.is_connected() and not self.rec.errors:
                rid = unique("bye")
                self._protocol().disconnect(self.conn, receipt=rid)
                try:
                    self.rec.wait_for(lambda: rid in self.rec.receipts or self.rec.disconnected,
                                      "RECEIPT for DISCONNECT", timeout=2)
                except AssertionError:
                    pass
        except Exception:
            pass
        try:
            self.conn.transport.disconnect_socket()
        except Exception:
            pass

    def drop(self):
        """Closes the TCP connection without DISCONNECT (a crashed or vanished client)."""
        self.conn.transport.disconnect_socket()
        self.rec.wait_for(lambda: self.rec.disconnected, "the socket to close")

    def is_connected(self):
        return self.conn.is_connected()

    # -- frames -------------------------------------------------------------

    def receipt(self):
        return unique("rcpt")

    def wait_receipt(self, rid):
        self.rec.wait_for(lambda: rid in self.rec.receipts, f"RECEIPT {rid}")

    def subscribe(self, destination, ack="auto", sub_id=None, wait=True, **headers):
        self._subscriptions += 1
        sub_id = sub_id or f"sub-{self._subscriptions}"
        rid = self.receipt()
        headers["receipt"] = rid
        if self.version == "1.0":
            self.conn.subscribe(destination, id=sub_id, ack=ack, headers=headers)
        else:
            self.conn.subscribe(destination, sub_id, ack=ack, headers=headers)
        if wait:
            self.wait_receipt(rid)
        elif CLUSTER:
            # Its RECEIPT says when the other nodes' messages can reach it:
            # the next SEND of the test waits for that (send_after_subscriptions).
            _unconfirmed.append((self, rid))
        return sub_id

    def unsubscribe(self, sub_id, wait=True, **headers):
        rid = self.receipt()
        headers["receipt"] = rid
        if self.version == "1.0":
            self.conn.unsubscribe(id=sub_id, headers=headers)
        else:
            self.conn.unsubscribe(sub_id, headers=headers)
        if wait:
            self.wait_receipt(rid)

    def send(self, destination, body, wait=True, content_type=None, transaction=None, **headers):
        send_after_subscriptions()
        rid = None
        if wait:
            rid = self.receipt()
            headers["receipt"] = rid
        if transaction is not None:
            headers["transaction"] = transaction
        self.conn.send(destination, body, content_type=content_type, headers=headers)
        if wait:
            self.wait_receipt(rid)

    def ack(self, message, transaction=None, wait=True):
        rid = self.receipt() if wait else None
        h = message.headers
        if self.version == "1.0":
            self.conn.ack(h["message-id"], transaction=transaction, receipt=rid)
        elif self.version == "1.1":
            self.conn.ack(h["message-id"], h["subscription"], transaction=transaction, receipt=rid)
        else:
            self.conn.ack(h["ack"], transaction=transaction, receipt=rid)
        if wait:
            self.wait_receipt(rid)

    def nack(self, message, transaction=None, wait=True, **headers):
        assert self.version != "1.0", "NACK does not exist in STOMP 1.0"
        rid = self.receipt() if wait else None
        h = message.headers
        if self.version == "1.1":
            self.conn.nack(h["message-id"], h["subscription"], transaction=transaction, receipt=rid, **headers)
        else:
            self.conn.nack(h["ack"], transaction=transaction, receipt=rid, **headers)
        if wait:
            self.wait_receipt(rid)

    def begin(self, wait=True):
        tx = unique("tx")
        rid = self.receipt()
        self.conn.begin(tx, headers={"receipt": rid})
        if wait:
            self.wait_receipt(rid)
        return tx

    def commit(self, tx, wait=True):
        rid = self.receipt()
        self.conn.commit(tx, headers={"receipt": rid})
        if wait:
            self.wait_receipt(rid)

    def abort(self, tx, wait=True):
        rid = self.receipt()
        self.conn.abort(tx, headers={"receipt": rid})
        if wait:
            self.wait_receipt(rid)

    # -- waiting ------------------------------------------------------------

    def wait_messages(self, n, timeout=TIMEOUT):
        self.rec.wait_for(lambda: len(self.rec.messages) >= n, f"{n} MESSAGE frame(s)", timeout)
        return self.rec.snapshot()

    def wait_body(self, body, timeout=TIMEOUT):
        self.rec.wait_for(lambda: any(m.body == body for m in self.rec.messages),
                          f"a MESSAGE with body {body!r}", timeout)
        return self.rec.snapshot()

    def settle(self):
        """Give frames that must not arrive a chance to show up."""
        time.sleep(GRACE)
        return self.rec.snapshot()
