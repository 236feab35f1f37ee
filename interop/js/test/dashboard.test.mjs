// The broker's admin dashboard (GET / on the admin listener) in headless Chromium driven by
// playwright-core: it follows a queue made by a stompjs client (depth after sends, purge
// takes its ready messages), shows and disconnects a connection, draws the rates chart, shows names as
// text, fits a phone, and its console stays free of errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { connect, disconnectAll, publishConfirmed, unique, withTimeout } from './support.mjs';

/** Debian's chromium; never a browser downloaded by Playwright. */
const EXECUTABLE = process.env.STOMPKIT_CHROMIUM || '/usr/bin/chromium';
/** The admin listener, e.g. http://127.0.0.1:40124/ (set by `cargo xtask interop-js`). */
const ADMIN_URL = process.env.STOMPKIT_ADMIN_URL;
/** Where screenshots go: STOMPKIT_SCREENSHOT_DIR, or the workspace's target/. */
const SHOTS = process.env.STOMPKIT_SCREENSHOT_DIR || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../target');
const WAIT = { timeout: 10000 };

let browser;
const pageErrors = [];
const stompClients = [];

before(async () => {
  if (!ADMIN_URL) {
    throw new Error('STOMPKIT_ADMIN_URL is not set: run the suite with `cargo xtask interop-js` (see interop/js/README.md)');
  }
  if (!fs.existsSync(EXECUTABLE)) {
    throw new Error(`${EXECUTABLE} not found (Debian: apt-get install chromium; or set STOMPKIT_CHROMIUM)`);
  }
  browser = await chromium.launch({
    executablePath: EXECUTABLE,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await disconnectAll(stompClients);
  await browser?.close();
});

/** The admin API's answer to GET `apiPath`, as JSON. */
async function api(apiPath) {
  const response = await fetch(new URL(apiPath, ADMIN_URL));
  assert.equal(response.status, 200, `GET ${apiPath}`);
  return response.json();
}

/** The dashboard in its own context, with page errors and console errors collected; live. */
async function openDashboard(viewport = { width: 1100, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${page.url()}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`${page.url()}: console: ${message.text()}`);
  });
  await page.goto(ADMIN_URL);
  await page.waitForSelector('body[data-state="live"]', WAIT);
  return page;
}

/** Waits until the cell `cell` of the row matching `row` shows `text`; returns the row's cells. */
async function waitForCell(page, row, cell, text) {
  await page.waitForFunction(
    ([row, cell, text]) => document.querySelector(`${row} td.${cell}`)?.textContent === text,
    [row, cell, text],
    WAIT,
  );
  return page.$eval(row, (tr) => Object.fromEntries([...tr.cells].map((td) => [td.className.split(' ')[0], td.textContent])));
}

/** A row selector by a data attribute, for any value (quotes and backslashes escaped). */
function rowWith(attribute, value) {
  return `tr[data-${attribute}="${String(value).replace(/["\\]/g, '\\$&')}"]`;
}

/** Clicks a confirm button twice: the first click asks, the second acts. */
async function confirmClick(page, selector) {
  await page.click(selector);
  await page.waitForSelector(`${selector}[data-confirm="true"]`, WAIT);
  await page.click(selector);
}

describe('admin dashboard', () => {
  test('GET / serves the page, its script and its styles, with no inline code', async () => {
    for (const [file, type] of [
      ['/', 'text/html'],
      ['/admin.js', 'javascript'],
      ['/admin.css', 'text/css'],
    ]) {
      const response = await fetch(new URL(file, ADMIN_URL));
      assert.equal(response.status, 200, file);
      assert.ok(response.headers.get('content-type')?.includes(type), `${file}: ${response.headers.get('content-type')}`);
      assert.equal(response.headers.get('access-control-allow-origin'), null, `${file}: no CORS`);
      const body = await response.text();
      assert.ok(body.length > 500, `${file} has content`);
      if (file === '/') {
        const csp = response.headers.get('content-security-policy') ?? '';
        assert.match(csp, /script-src 'self'/, csp);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, csp);
        // Every script is a file of its own, no styles or handlers inline, nothing from elsewhere.
        assert.deepEqual([...body.matchAll(/<script([^>]*)>/g)].map((m) => m[1].trim()), ['src="/admin.js" defer']);
        assert.doesNotMatch(body, /<style|\sstyle=|\son[a-z]+=|https?:\/\//i);
      }
    }
  });

  test('a queue made by a stompjs client: its depth follows the sends, purge empties it of ready messages', async () => {
    const page = await openDashboard();
    const { client } = await connect();
    stompClients.push(client);
    // A name with markup in it: shown as text, and URL-encoded for the purge.
    const name = `${unique('dash')}-<i>x</i>`;
    const destination = `/queue/${name}`;
    const row = rowWith('queue', name);
    for (let i = 0; i < 2; i += 1) await publishConfirmed(client, { destination, body: `m${i}` });
    let cells = await waitForCell(page, row, 'ready', '2');
    assert.equal(cells.name, name);
    assert.deepEqual([cells.unacked, cells.consumers], ['0', '0']);
    assert.notEqual(cells.bytes, '0 B');
    assert.equal(await page.evaluate(() => document.querySelector('#queues i')), null, 'no markup from the name');

    for (let i = 2; i < 5; i += 1) await publishConfirmed(client, { destination, body: `m${i}` });
    await waitForCell(page, row, 'ready', '5');
    const published = await page.$eval('#published', (dd) => Number(dd.textContent.replace(/,/g, '')));
    assert.ok(published >= 5, `published ${published}`);
    const overviewQueues = await page.$eval('#queues-count', (dd) => Number(dd.textContent.replace(/,/g, '')));
    assert.ok(overviewQueues >= 1, `queues ${overviewQueues}`);

    // The chart draws the overview's history (one sample a second).
    await page.waitForFunction(() => Number(document.querySelector('#chart').dataset.points) >= 2, null, WAIT);
    const inked = await page.$eval('#chart', (canvas) => {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n += 1;
      return n;
    });
    assert.ok(inked > 200, `the chart drew ${inked} pixels`);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard.png'), fullPage: true });

    // A consumer holding one unacknowledged message: purge takes the ready ones and
    // leaves that one (and the consumer).
    const { client: consumer } = await connect();
    stompClients.push(consumer);
    const held = [];
    await new Promise((resolve) => {
      const receipt = unique('sub');
      consumer.watchForReceipt(receipt, resolve);
      consumer.subscribe(destination, (message) => held.push(message), {
        ack: 'client-individual',
        'prefetch-count': '1',
        receipt,
      });
    });
    cells = await waitForCell(page, row, 'ready', '4');
    assert.deepEqual([cells.unacked, cells.consumers], ['1', '1']);

    await confirmClick(page, `${row} button.purge`);
    cells = await waitForCell(page, row, 'ready', '0');
    assert.deepEqual([cells.unacked, cells.consumers], ['1', '1']);
    await page.waitForFunction(() => /Purged 4 from/.test(document.querySelector('#status').textContent), null, WAIT);
    const queue = await api(`/api/queues/${encodeURIComponent(name)}`);
    assert.deepEqual([queue.ready, queue.unacked, queue.consumers], [0, 1, 1]);
    assert.deepEqual(held.map((m) => m.body), ['m0']);
    assert.deepEqual(pageErrors, []);
    await page.close();
  });

  test('a connection is listed and the disconnect button closes it with ERROR', async () => {
    const page = await openDashboard();
    const before = new Set((await api('/api/connections')).map((c) => c.id));
    const { client } = await connect();
    stompClients.push(client);
    const told = new Promise((resolve) => {
      client.onStompError = (frame) => resolve(frame.headers.message);
    });
    let mine;
    for (const deadline = Date.now() + WAIT.timeout; !mine && Date.now() < deadline; ) {
      mine = (await api('/api/connections')).find((c) => !before.has(c.id));
      if (!mine) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(mine, 'the new connection is listed by the API');
    const row = rowWith('connection', mine.id);
    const cells = await waitForCell(page, row, 'transport', 'ws');
    assert.deepEqual([cells.id, cells.login, cells.version], [String(mine.id), '(anonymous)', '1.2']);

    await confirmClick(page, `${row} button.disconnect`);
    assert.equal(await withTimeout(told, 'the ERROR frame of the disconnect'), 'closed by administrator');
    await page.waitForSelector(row, { state: 'detached', ...WAIT });
    await page.waitForFunction(() => /Disconnected connection/.test(document.querySelector('#status').textContent), null, WAIT);
    assert.deepEqual(pageErrors, []);
    await page.close();
  });

  test('queues named like JavaScript object members are rows like any other', async () => {
    const page = await openDashboard();
    const { client } = await connect();
    stompClients.push(client);
    const names = ['constructor', '__proto__', 'toString'];
    for (const name of names) await publishConfirmed(client, { destination: `/queue/${name}`, body: name });
    for (const name of names) await waitForCell(page, rowWith('queue', name), 'ready', '1');
    assert.equal(await page.getAttribute('body', 'data-state'), 'live');
    assert.deepEqual(pageErrors, []);
    await page.close();
  });

  test('a first click only asks: nothing is purged until the second', async () => {
    const page = await openDashboard();
    const { client } = await connect();
    stompClients.push(client);
    const name = unique('dash-keep');
    const row = rowWith('queue', name);
    await publishConfirmed(client, { destination: `/queue/${name}`, body: 'kept' });
    await waitForCell(page, row, 'ready', '1');
    await page.click(`${row} button.purge`);
    assert.equal(await page.textContent(`${row} button.purge`), 'Purge: sure?');
    // Unconfirmed, the button goes back after a few seconds and the message stays.
    await page.waitForSelector(`${row} button.purge:not([data-confirm])`, WAIT);
    assert.equal((await api(`/api/queues/${encodeURIComponent(name)}`)).ready, 1);
    assert.equal(await page.textContent(`${row} td.ready`), '1');
    assert.deepEqual(pageErrors, []);
    await page.close();
  });

  test('fits a phone screen (390 px wide) without sideways scrolling', async () => {
    const page = await openDashboard({ width: 390, height: 800 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-phone.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
    await page.close();
  });
});
