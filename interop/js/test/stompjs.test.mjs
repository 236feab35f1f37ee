// @stomp/stompjs (on Node, over the `ws` package) against stompkit-broker's WebSocket endpoint.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  WS_URL,
  connect,
  connectMany,
  disconnectAll,
  publishConfirmed,
  sleep,
  subscribe,
  unique,
  waitForReceipt,
  withTimeout,
} from './support.mjs';

const open = [];
/** Connects and remembers the client, so every test's clients are closed at the end. */
async function connected(options) {
  const session = await connect(options);
  open.push(session.client);
  return session;
}
after(() => disconnectAll(open));

describe('connect', () => {
  test('stompjs offers v12/v11/v10.stomp and gets v12.stomp and STOMP 1.2', async () => {
    const { client, connected: frame, socket } = await connected();
    assert.equal(socket.protocol, 'v12.stomp');
    assert.equal(frame.headers.version, '1.2');
    assert.equal(client.connectedVersion, '1.2');
    assert.ok(frame.headers.server?.startsWith('stompkit'), `server header ${frame.headers.server}`);
  });

  test('a 1.1-only client gets v11.stomp and STOMP 1.1', async () => {
    const { connected: frame, socket } = await connected({ versions: ['1.1'] });
    assert.equal(socket.protocol, 'v11.stomp');
    assert.equal(frame.headers.version, '1.1');
  });

  test('a 1.0-only client gets v10.stomp and STOMP 1.0', async () => {
    const { connected: frame, socket } = await connected({ versions: ['1.0'] });
    assert.equal(socket.protocol, 'v10.stomp');
    // STOMP 1.0 servers need not send `version`; when present it says 1.0.
    assert.ok([undefined, '1.0'].includes(frame.headers.version), `version ${frame.headers.version}`);
  });

  test('the v11.stomp sub-protocol caps the version even if CONNECT asks for 1.2', async () => {
    const { connected: frame, socket } = await connected({ protocols: ['v11.stomp'] });
    assert.equal(socket.protocol, 'v11.stomp');
    assert.equal(frame.headers.version, '1.1');
  });

  test('a client that offers no sub-protocol is still accepted', async () => {
    const { connected: frame, socket } = await connected({ protocols: [] });
    assert.equal(socket.protocol, '');
    assert.equal(frame.headers.version, '1.2');
  });

  test('an unknown path is refused during the handshake', async () => {
    const url = new URL(WS_URL);
    url.pathname = '/no-such-path';
    const socket = new WebSocket(url, ['v12.stomp']);
    const status = await withTimeout(
      new Promise((resolve) => {
        socket.on('unexpected-response', (_, response) => resolve(response.statusCode));
        socket.on('open', () => resolve('open'));
        socket.on('error', () => {});
      }),
      'the handshake answer',
    );
    socket.terminate();
    assert.equal(status, 404);
  });
});

describe('delivery', () => {
  test('a topic delivers every message to every subscriber, in order', async () => {
    const destination = `/topic/${unique('js-order')}`;
    const { client: a } = await connected();
    const { client: b } = await connected();
    const { client: publisher } = await connected();
    const first = await subscribe(a, destination);
    const second = await subscribe(b, destination);
    const sent = Array.from({ length: 100 }, (_, i) => `message ${i}`);
    for (const body of sent) publisher.publish({ destination, body });
    for (const subscription of [first, second]) {
      const got = await subscription.waitFor(sent.length);
      assert.deepEqual(
        got.map((m) => m.body),
        sent,
      );
      assert.ok(got.every((m) => m.headers.destination === destination));
      assert.equal(new Set(got.map((m) => m.headers['message-id'])).size, sent.length, 'message-ids are unique');
    }
  });

  test('a queue keeps messages sent before anyone subscribed and delivers them in order', async () => {
    const destination = `/queue/${unique('js-queue')}`;
    const { client: producer } = await connected();
    const sent = Array.from({ length: 50 }, (_, i) => `job ${i}`);
    for (const body of sent.slice(0, -1)) producer.publish({ destination, body });
    await publishConfirmed(producer, { destination, body: sent.at(-1) });
    const { client: consumer } = await connected();
    const { waitFor } = await subscribe(consumer, destination);
    const got = await waitFor(sent.length);
    assert.deepEqual(
      got.map((m) => m.body),
      sent,
    );
  });

  test('a queue gives each message to one of two consumers', async () => {
    const destination = `/queue/${unique('js-compete')}`;
    const { client: a } = await connected();
    const { client: b } = await connected();
    const { client: producer } = await connected();
    const all = [];
    const first = await subscribe(a, destination, {}, (m) => all.push(m.body));
    const second = await subscribe(b, destination, {}, (m) => all.push(m.body));
    const sent = Array.from({ length: 40 }, (_, i) => `task ${i}`);
    for (const body of sent) producer.publish({ destination, body });
    await withTimeout(
      (async () => {
        while (all.length < sent.length) await sleep(10);
      })(),
      `${sent.length} queue messages`,
    );
    await sleep(100); // nothing more may come
    assert.deepEqual([...all].sort(), [...sent].sort(), 'each message exactly once');
    for (const { messages } of [first, second]) {
      const order = messages.map((m) => sent.indexOf(m.body));
      assert.deepEqual(order, [...order].sort((x, y) => x - y), 'each consumer sees its share in order');
    }
  });
});

describe('UTF-8', () => {
  test('UTF-8 bodies and header values (with characters STOMP 1.2 escapes) arrive unchanged', async () => {
    const destination = `/topic/${unique('js-utf8')}`;
    const { client: receiver } = await connected();
    const { client: sender } = await connected();
    const { waitFor } = await subscribe(receiver, destination);
    const body = 'héllo wörld ✓ 日本語 🎉 Ωμέγα';
    const headers = {
      'x-greeting': 'grüß dich ☃',
      'x-escapes': 'colon: backslash\\ newline\nend',
      'x-emoji': '🚀',
    };
    sender.publish({ destination, body, headers: { ...headers, 'content-type': 'text/plain;charset=utf-8' } });
    const [message] = await waitFor(1);
    assert.equal(message.body, body);
    for (const [name, value] of Object.entries(headers)) assert.equal(message.headers[name], value, name);
    assert.equal(Number(message.headers['content-length']), Buffer.byteLength(body, 'utf8'));
    assert.equal(message.headers['content-type'], 'text/plain;charset=utf-8');
  });

  test('a UTF-8 destination name works', async () => {
    const destination = `/topic/${unique('js-ünïcødé-日本')}`;
    const { client } = await connected();
    const { waitFor } = await subscribe(client, destination);
    client.publish({ destination, body: 'x' });
    const [message] = await waitFor(1);
    assert.equal(message.headers.destination, destination);
  });
});

describe('binary', () => {
  test('a binary body with NULs goes out and comes back in binary WebSocket messages', async () => {
    const destination = `/queue/${unique('js-binary')}`;
    const { client: receiver, socket } = await connected();
    const { client: sender } = await connected();
    const { waitFor } = await subscribe(receiver, destination);
    // Every byte value, NULs among them, and invalid UTF-8 (0xC3 0x28, lone 0xFF).
    const bytes = new Uint8Array([0, 0, 1, 0xc3, 0x28, 0xff, 0, ...Array.from({ length: 256 }, (_, i) => i), 0]);
    sender.publish({ destination, binaryBody: bytes, headers: { 'content-type': 'application/octet-stream' } });
    const [message] = await waitFor(1);
    assert.equal(message.isBinaryBody, true, 'stompjs read the MESSAGE from a binary WebSocket message');
    assert.deepEqual(new Uint8Array(message.binaryBody), bytes);
    assert.equal(Number(message.headers['content-length']), bytes.length);
    const messageFrames = socket.received.filter(({ data }) => Buffer.from(data).includes('MESSAGE\n'));
    assert.equal(messageFrames.length, 1);
    assert.equal(messageFrames[0].binary, true, 'a body that is not UTF-8 never travels as a text message');
  });

  test('a text client receives a UTF-8 body that contains NULs (sent with content-length) intact', async () => {
    const destination = `/queue/${unique('js-nul-text')}`;
    const { client: receiver } = await connected();
    const { client: sender } = await connected();
    const { waitFor } = await subscribe(receiver, destination);
    const body = 'before\u0000middle\u0000after ✓';
    sender.publish({ destination, binaryBody: new TextEncoder().encode(body) });
    const [message] = await waitFor(1);
    assert.equal(new TextDecoder().decode(message.binaryBody), body);
  });

  test('forceBinaryWSFrames: a client that sends binary frames gets MESSAGEs in binary frames', async () => {
    const destination = `/topic/${unique('js-force-binary')}`;
    const { client, socket } = await connected({ forceBinaryWSFrames: true });
    const { waitFor } = await subscribe(client, destination);
    client.publish({ destination, body: 'plain text, sent as a binary message' });
    const [message] = await waitFor(1);
    assert.equal(new TextDecoder().decode(message.binaryBody), 'plain text, sent as a binary message');
    const last = socket.received.at(-1);
    assert.equal(last.binary, true);
  });
});

describe('receipts', () => {
  test('SEND, SUBSCRIBE and UNSUBSCRIBE with a receipt header are each confirmed', async () => {
    const destination = `/topic/${unique('js-receipt')}`;
    const { client } = await connected();
    const receipt = await publishConfirmed(client, { destination, body: 'nobody listens' });
    assert.equal(receipt.command, 'RECEIPT');
    const { subscription } = await subscribe(client, destination); // waits for its receipt
    const id = unique('unsub');
    const unsubscribed = waitForReceipt(client, id);
    subscription.unsubscribe({ receipt: id });
    assert.equal((await unsubscribed).headers['receipt-id'], id);
  });

  test('a message published after the SUBSCRIBE receipt is delivered, and DISCONNECT is confirmed', async () => {
    const destination = `/topic/${unique('js-receipt-order')}`;
    const { client: subscriber } = await connected();
    const { client: publisher } = await connected();
    const { waitFor } = await subscribe(subscriber, destination);
    await publishConfirmed(publisher, { destination, body: 'after the receipt' });
    const [message] = await waitFor(1);
    assert.equal(message.body, 'after the receipt');
    const disconnected = withTimeout(
      new Promise((resolve) => {
        publisher.onDisconnect = resolve;
      }),
      'the RECEIPT for DISCONNECT',
    );
    await publisher.deactivate();
    assert.equal((await disconnected).command, 'RECEIPT');
  });
});

describe('acks', () => {
  test('client-individual: unacked messages go to the next consumer, acked ones do not', async () => {
    const destination = `/queue/${unique('js-acks')}`;
    const { client: producer } = await connected();
    const { client: first } = await connected();
    const sent = ['one', 'two', 'three', 'four'];
    const a = await subscribe(first, destination, { ack: 'client-individual' });
    for (const body of sent) producer.publish({ destination, body });
    const got = await a.waitFor(sent.length);
    assert.deepEqual(
      got.map((m) => m.body),
      sent,
    );
    assert.ok(got.every((m) => m.headers.ack), 'STOMP 1.2 MESSAGEs carry an ack id');
    // Ack one and three (out of order), leave two and four unacknowledged, then leave.
    got[2].ack();
    got[0].ack();
    await first.deactivate();
    const { client: second } = await connected();
    const b = await subscribe(second, destination, { ack: 'client-individual' });
    const again = await b.waitFor(2);
    assert.deepEqual(
      again.map((m) => m.body),
      ['two', 'four'],
    );
    for (const message of again) message.ack();
    await sleep(150);
    assert.equal(b.messages.length, 2, 'acked messages are not delivered again');
  });

  test('client-individual: a NACKed message is delivered again', async () => {
    const destination = `/queue/${unique('js-nack')}`;
    const { client } = await connected();
    const seen = [];
    const { waitFor } = await subscribe(client, destination, { ack: 'client-individual' }, (message) => {
      seen.push(message.body);
      if (seen.length === 1) message.nack();
      else message.ack();
    });
    client.publish({ destination, body: 'retry me' });
    const [first, second] = await waitFor(2);
    assert.equal(first.body, 'retry me');
    assert.equal(second.body, 'retry me');
  });
});

describe('heart-beats', () => {
  test('200 ms heart-beats both ways keep an idle connection open', async () => {
    const beats = { received: 0 };
    const { client, connected: frame, socket } = await connected({
      heartbeatIncoming: 200,
      heartbeatOutgoing: 200,
      onHeartbeatReceived: () => {
        beats.received += 1;
      },
    });
    // The broker (started with STOMPKIT_HEARTBEAT_MIN_MS=100) grants exactly what was asked.
    assert.equal(frame.headers['heart-beat'], '200,200');
    let closed = false;
    client.onWebSocketClose = () => {
      closed = true;
    };
    await sleep(1500);
    assert.equal(closed, false, 'the connection survived 1.5 s of silence apart from heart-beats');
    assert.ok(beats.received >= 4, `broker heart-beats in 1.5 s: ${beats.received} (expected about 7)`);
    assert.ok(socket.sentHeartBeats >= 4, `client heart-beats in 1.5 s: ${socket.sentHeartBeats}`);
    const destination = `/topic/${unique('js-alive')}`;
    const { waitFor } = await subscribe(client, destination);
    client.publish({ destination, body: 'still here' });
    assert.equal((await waitFor(1))[0].body, 'still here');
  });

  test('the broker closes a connection whose client stopped sending heart-beats', async () => {
    // A raw socket (stompjs cannot be made to stop its own heart-beats).
    const socket = new WebSocket(WS_URL, ['v12.stomp']);
    const frames = [];
    socket.on('message', (data) => frames.push(Buffer.from(data).toString()));
    await withTimeout(new Promise((resolve) => socket.on('open', resolve)), 'open');
    const started = Date.now();
    socket.send('CONNECT\naccept-version:1.2\nhost:/\nheart-beat:200,0\n\n\u0000');
    const code = await withTimeout(new Promise((resolve) => socket.on('close', resolve)), 'the broker to close');
    const elapsed = Date.now() - started;
    assert.ok(frames[0]?.startsWith('CONNECTED\n'), `first frame: ${frames[0]}`);
    assert.match(frames[0], /\nheart-beat:0,200\n/);
    assert.ok(elapsed >= 200 && elapsed < 3000, `closed after ${elapsed} ms (close code ${code})`);
  });
});

describe('sizes', () => {
  test('a 512 KiB message arrives whole', async () => {
    const destination = `/queue/${unique('js-large')}`;
    const { client: receiver } = await connected();
    const { client: sender } = await connected();
    const { waitFor } = await subscribe(receiver, destination);
    const line = 'stompkit ✓ 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n';
    let body = line.repeat(Math.ceil((512 * 1024) / Buffer.byteLength(line)));
    body = Buffer.from(body).subarray(0, 512 * 1024).toString(); // cut at a character boundary (ASCII there)
    assert.equal(Buffer.byteLength(body), 512 * 1024);
    sender.publish({ destination, body });
    const [message] = await waitFor(1);
    assert.equal(Number(message.headers['content-length']), 512 * 1024);
    assert.ok(message.body === body, 'the 512 KiB body is byte for byte what was sent');
  });
});

describe('fan-out', () => {
  test('200 clients on one topic each receive every message, in order', async () => {
    const destination = `/topic/${unique('js-fanout')}`;
    const clients = await connectMany(200);
    open.push(...clients);
    const subscriptions = await Promise.all(clients.map((client) => subscribe(client, destination)));
    const { client: publisher } = await connected();
    const sent = ['first', 'second', 'third', 'fourth', 'fifth'];
    for (const body of sent) publisher.publish({ destination, body });
    const results = await Promise.all(subscriptions.map(({ waitFor }) => waitFor(sent.length)));
    for (const got of results) {
      assert.deepEqual(
        got.map((m) => m.body),
        sent,
      );
    }
    await disconnectAll(clients);
  });
});
