// @stomp/stompjs against stompkit-broker: wildcard topic subscriptions and request/reply
// through temporary queues (RabbitMQ's conventions; `>`, the refusals and the reply queue's
// 128-bit hexadecimal name are stompkit's).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, disconnectAll, publishConfirmed, sleep, subscribe, unique, withTimeout } from './support.mjs';

const open = [];
/** Connects and remembers the client, so every test's clients are closed at the end. */
async function connected(options) {
  const session = await connect(options);
  open.push(session.client);
  return session;
}
after(() => disconnectAll(open));

/** Publishes each `/topic/<root>.<name>` (or `/topic/<root>` for '') with its name as body, then `end`. */
async function publishAll(client, root, names) {
  for (const name of [...names, 'end']) {
    const destination = name ? `/topic/${root}.${name}` : `/topic/${root}`;
    await publishConfirmed(client, { destination, body: name || '<root>' });
  }
}

/** The bodies `sub` got up to and including `end`. */
async function bodiesUntilEnd(sub) {
  await withTimeout(
    (async () => {
      while (!sub.messages.some((m) => m.body === 'end')) await sleep(5);
    })(),
    'the end marker',
  );
  return sub.messages.map((m) => m.body);
}

describe('wildcard subscriptions', () => {
  test('`*` matches exactly one segment and the MESSAGE names the real destination', async () => {
    const root = unique('js-wild');
    const { client: sub } = await connected();
    const { client: pub } = await connected();
    const star = await subscribe(sub, `/topic/${root}.*`);
    await publishAll(pub, root, ['', 'a', 'a.b']);
    assert.deepEqual(await bodiesUntilEnd(star), ['a', 'end']);
    assert.equal(star.messages[0].headers.destination, `/topic/${root}.a`);
  });

  test('`#` matches zero or more segments, also mid-pattern', async () => {
    const root = unique('js-wild');
    const { client: sub } = await connected();
    const { client: pub } = await connected();
    const tail = await subscribe(sub, `/topic/${root}.#`);
    const middle = await subscribe(sub, `/topic/${root}.#.c`);
    await publishAll(pub, root, ['', 'c', 'b.c', 'b.b.c', 'x']);
    assert.deepEqual(await bodiesUntilEnd(tail), ['<root>', 'c', 'b.c', 'b.b.c', 'x', 'end']);
    await sleep(100);
    assert.deepEqual(middle.messages.map((m) => m.body), ['c', 'b.c', 'b.b.c']);
  });

  test('`>` matches one or more trailing segments', async () => {
    const root = unique('js-wild');
    const { client: sub } = await connected();
    const { client: pub } = await connected();
    const rest = await subscribe(sub, `/topic/${root}.>`);
    await publishAll(pub, root, ['', 'a', 'a.b']);
    assert.deepEqual(await bodiesUntilEnd(rest), ['a', 'a.b', 'end']);
  });

  test('a SEND to a wildcard destination gets an ERROR', async () => {
    const { client } = await connected();
    const error = withTimeout(new Promise((resolve) => (client.onStompError = resolve)), 'ERROR');
    client.publish({ destination: `/topic/${unique('js-wild')}.*`, body: 'nope' });
    assert.match((await error).headers.message, /wildcard/);
  });
});

describe('request/reply', () => {
  /** A service on `queue` answering each request on its reply-to with `re:<body>`. */
  async function service(queue) {
    const { client } = await connected();
    const requests = [];
    await subscribe(client, queue, {}, (request) => {
      requests.push(request);
      client.publish({
        destination: request.headers['reply-to'],
        body: `re:${request.body}`,
        headers: { 'correlation-id': request.headers['correlation-id'] },
      });
    });
    return requests;
  }

  test('a reply to /temp-queue/ arrives as an unhandled message on that subscription id', async () => {
    const queue = `/queue/${unique('js-rpc')}`;
    const requests = await service(queue);
    const { client } = await connected();
    const replies = [];
    client.onUnhandledMessage = (message) => replies.push(message);
    for (const id of ['1', '2']) {
      client.publish({
        destination: queue,
        body: `ping${id}`,
        headers: { 'reply-to': '/temp-queue/rpc', 'correlation-id': id },
      });
    }
    await withTimeout(
      (async () => {
        while (replies.length < 2) await sleep(5);
      })(),
      'two replies',
    );
    assert.deepEqual(replies.map((m) => [m.body, m.headers['correlation-id'], m.headers.subscription]), [
      ['re:ping1', '1', '/temp-queue/rpc'],
      ['re:ping2', '2', '/temp-queue/rpc'],
    ]);
    assert.match(requests[0].headers['reply-to'], /^\/reply-queue\/[0-9a-f]{32}$/);
    assert.equal(requests[0].headers['reply-to'], requests[1].headers['reply-to']);
  });
});
