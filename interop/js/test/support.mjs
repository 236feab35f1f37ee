// Shared helpers for the stompjs suite: where the broker is, connected clients, waiting.
import { Client, Versions } from '@stomp/stompjs';
import WebSocket from 'ws';

/** The broker's WebSocket endpoint, e.g. ws://127.0.0.1:40123/ws (set by `cargo xtask interop-js`). */
export const WS_URL = requiredEnv('STOMPKIT_WS_URL');

/** How long any single wait may take before the test fails, in ms. */
export const TIMEOUT_MS = Number(process.env.STOMPKIT_JS_TIMEOUT_MS || 5000);

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the suite with \`cargo xtask interop-js\` (see interop/js/README.md)`);
  }
  return value;
}

let counter = 0;

/** A name no other test (or earlier run against the same broker) uses, e.g. `/queue/js-acks-3-lq2w`. */
export function unique(prefix) {
  counter += 1;
  return `${prefix}-${counter}-${process.pid.toString(36)}${Date.now().toString(36)}`;
}

/**
 * A WebSocket from the `ws` package that records what crosses it: `received` holds every
 * incoming message as `{ binary, data }`, `sentHeartBeats` counts bare-EOL messages sent.
 */
export function recordingSocket(url, protocols) {
  const socket = new WebSocket(url, protocols);
  socket.received = [];
  socket.sentHeartBeats = 0;
  socket.on('message', (data, binary) => socket.received.push({ binary, data }));
  const send = socket.send.bind(socket);
  socket.send = (data, ...rest) => {
    if (data === '\n' || data === '\r\n') socket.sentHeartBeats += 1;
    return send(data, ...rest);
  };
  return socket;
}

/**
 * Connects a stompjs `Client` over `ws` and resolves once CONNECTED arrived, with
 * `{ client, connected, socket }`. `options` go to the Client (e.g. heartbeatIncoming),
 * `versions` (default 1.2, 1.1, 1.0) decide both accept-version and the offered
 * sub-protocols (`v12.stomp` ...), as stompjs does with `brokerURL`.
 * Unexpected STOMP ERRORs and socket errors are collected in `client.errors`.
 */
export function connect({ versions = ['1.2', '1.1', '1.0'], protocols, ...options } = {}) {
  const client = new Client({
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    connectionTimeout: TIMEOUT_MS,
    debug: () => {},
    ...options,
  });
  client.stompVersions = new Versions(versions);
  let socket;
  client.webSocketFactory = () => {
    socket = recordingSocket(WS_URL, protocols ?? client.stompVersions.protocolVersions());
    return socket;
  };
  client.errors = [];
  return withTimeout(
    new Promise((resolve, reject) => {
      client.onConnect = (connected) => resolve({ client, connected, socket });
      client.onStompError = (frame) => {
        client.errors.push(frame);
        reject(new Error(`ERROR frame: ${frame.headers.message} ${frame.body}`));
      };
      client.onWebSocketError = (event) => {
        client.errors.push(event);
        reject(new Error(`WebSocket error: ${event.message ?? event}`));
      };
      client.onWebSocketClose = (event) => reject(new Error(`WebSocket closed before CONNECTED (${event.code})`));
      client.activate();
    }),
    'CONNECTED',
  );
}

/** Connects `count` clients, at most `parallel` handshakes at a time. */
export async function connectMany(count, options = {}, parallel = 50) {
  const clients = [];
  for (let start = 0; start < count; start += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - start) }, () => connect(options));
    for (const { client } of await Promise.all(batch)) clients.push(client);
  }
  return clients;
}

/** Disconnects every client (DISCONNECT with receipt, then close), ignoring ones already gone. */
export async function disconnectAll(clients) {
  await Promise.all(clients.map((client) => client.deactivate().catch(() => {})));
}

/**
 * Subscribes and resolves once the broker's RECEIPT for the SUBSCRIBE arrived, so that
 * messages published afterwards are delivered. Returns `{ subscription, messages, waitFor }`:
 * `waitFor(n)` resolves with the first n messages.
 */
export async function subscribe(client, destination, headers = {}, onMessage = () => {}) {
  const messages = [];
  const waiters = [];
  const receipt = unique('sub');
  const receipted = waitForReceipt(client, receipt);
  const subscription = client.subscribe(
    destination,
    (message) => {
      messages.push(message);
      onMessage(message);
      for (const waiter of waiters.filter((w) => messages.length >= w.count)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(messages.slice(0, waiter.count));
      }
    },
    { ...headers, receipt },
  );
  await receipted;
  const waitFor = (count, what = `${count} messages on ${destination}`) =>
    messages.length >= count
      ? Promise.resolve(messages.slice(0, count))
      : withTimeout(new Promise((resolve) => waiters.push({ count, resolve })), `${what} (got ${messages.length})`);
  return { subscription, messages, waitFor };
}

/** Resolves with the RECEIPT frame for `receipt` (register before sending the frame). */
export function waitForReceipt(client, receipt) {
  return withTimeout(new Promise((resolve) => client.watchForReceipt(receipt, resolve)), `RECEIPT ${receipt}`);
}

/** Publishes with a receipt and resolves when the broker confirmed it. */
export async function publishConfirmed(client, params) {
  const receipt = unique('pub');
  const receipted = waitForReceipt(client, receipt);
  client.publish({ ...params, headers: { ...(params.headers ?? {}), receipt } });
  return receipted;
}

/** Rejects when `promise` takes longer than `ms`, naming what it waited for. */
export function withTimeout(promise, what, ms = TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Waits `ms`. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
