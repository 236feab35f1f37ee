// The broker's demo chat page (GET /) in headless Chromium driven by playwright-core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { WS_URL, connect, disconnectAll, unique } from './support.mjs';

/** Debian's chromium; never a browser downloaded by Playwright. */
const EXECUTABLE = process.env.STOMPKIT_CHROMIUM || '/usr/bin/chromium';
/** The page: the broker's own origin (http://ip:port/), derived from the WebSocket URL. */
const PAGE_URL = new URL('/', WS_URL.replace(/^ws/, 'http')).href;
/** Where screenshots go: STOMPKIT_SCREENSHOT_DIR, or the workspace's target/. */
const SHOTS = process.env.STOMPKIT_SCREENSHOT_DIR || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../target');
const WAIT = { timeout: 10000 };

let browser;
const pageErrors = [];
const stompClients = [];

before(async () => {
  if (!fs.existsSync(EXECUTABLE)) {
    throw new Error(`${EXECUTABLE} not found (Debian: apt-get install chromium; or set STOMPKIT_CHROMIUM)`);
  }
  // launch() gives every run a fresh temporary user-data-dir and removes it on close.
  browser = await chromium.launch({
    executablePath: EXECUTABLE,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await disconnectAll(stompClients);
  await browser?.close();
});

/** A page in its own context (own storage, like another person), with page errors collected. */
async function openPage(viewport = { width: 900, height: 640 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${page.url()}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`${page.url()}: console: ${message.text()}`);
  });
  await page.goto(PAGE_URL);
  return page;
}

/** Fills in the join form and waits until the status line says connected. */
async function join(page, name, room) {
  await page.fill('#name', name);
  await page.fill('#room', room);
  await page.click('#join');
  await page.waitForSelector('#status[data-state="connected"]', WAIT);
}

/** Types and sends a chat line. */
async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

/** The messages list as [{ kind, who, text }]. */
function messages(page) {
  return page.$$eval('#messages li', (items) =>
    items.map((li) => ({
      kind: li.className,
      who: li.querySelector('.who')?.textContent ?? null,
      text: li.querySelector('.text')?.textContent ?? '',
    })),
  );
}

describe('demo page', () => {
  test('GET / serves the page, its script and its styles', async () => {
    for (const [file, type] of [
      ['/', 'text/html'],
      ['/chat.js', 'javascript'],
      ['/chat.css', 'text/css'],
    ]) {
      const response = await fetch(new URL(file, PAGE_URL));
      assert.equal(response.status, 200, file);
      assert.ok(response.headers.get('content-type')?.includes(type), `${file}: ${response.headers.get('content-type')}`);
      assert.ok((await response.text()).length > 100, `${file} has content`);
    }
  });

  test('two people in one room: one sends, the other sees it in real time', async () => {
    const room = unique('room').toLowerCase();
    const bob = await openPage();
    const alice = await openPage();
    await join(bob, 'bob', room);
    await join(alice, 'alice', room);
    assert.match(await bob.textContent('#status'), /STOMP 1\.2 \(v12\.stomp\)/);
    // Bob was there first, so he is told that alice joined.
    await bob.waitForSelector('#messages li.note:has-text("alice joined")', WAIT);

    const hello = 'grüße from alice ✓ ça va?';
    await say(alice, hello);
    await bob.waitForSelector(`#messages li.theirs:has-text("${hello}")`, WAIT);
    const seenByBob = (await messages(bob)).find((m) => m.text === hello);
    assert.deepEqual(seenByBob, { kind: 'theirs', who: 'alice', text: hello });
    await alice.waitForSelector(`#messages li.mine:has-text("${hello}")`, WAIT);

    // Markup arrives as text, never as HTML.
    const markup = '<img src=x onerror="window.pwned=1"> <b>bold?</b>';
    await say(bob, markup);
    await alice.waitForSelector('#messages li.theirs >> nth=0', WAIT);
    await alice.waitForFunction((text) => [...document.querySelectorAll('#messages .text')].some((e) => e.textContent === text), markup, WAIT);
    assert.equal(await alice.evaluate(() => document.querySelector('#messages img') === null && window.pwned === undefined), true);

    await say(bob, 'hi alice, welcome to #' + room);
    await alice.waitForSelector('#messages li.theirs:has-text("welcome to")', WAIT);
    await alice.screenshot({ path: path.join(SHOTS, 'demo-chat.png') });
    await bob.screenshot({ path: path.join(SHOTS, 'demo-chat-bob.png') });
    assert.deepEqual(pageErrors, []);
    await alice.close();
    await bob.close();
  });

  test('other STOMP clients show up too: JSON chat lines and plain text', async () => {
    const room = unique('mixed').toLowerCase();
    const page = await openPage();
    await join(page, 'carol', room);
    const { client } = await connect();
    stompClients.push(client);
    const destination = `/topic/chat.${room}`;
    client.publish({
      destination,
      body: JSON.stringify({ type: 'chat', name: 'node', text: 'from stompjs' }),
      headers: { 'content-type': 'application/json' },
    });
    client.publish({ destination, body: 'plain text line' });
    await page.waitForSelector('#messages li.theirs:has-text("plain text line")', WAIT);
    const shown = (await messages(page)).filter((m) => m.kind === 'theirs');
    assert.deepEqual(shown, [
      { kind: 'theirs', who: 'node', text: 'from stompjs' },
      { kind: 'theirs', who: 'anonymous', text: 'plain text line' },
    ]);
    await page.close();
  });

  test('a dropped connection is re-established and the room subscribed again', async () => {
    const room = unique('again').toLowerCase();
    const fred = await openPage();
    const erin = await openPage();
    await join(fred, 'fred', room);
    await join(erin, 'erin', room);
    await fred.waitForSelector('#messages li.note:has-text("erin joined")', WAIT);
    await erin.evaluate(() => window.stompkitChat.connection().ws.close(4001, 'test: dropped'));
    await erin.waitForSelector('#status[data-state="retrying"]', WAIT);
    assert.match(await erin.textContent('#status'), /test: dropped\. Retrying in 1 s \.\.\./);
    await erin.waitForSelector('#status[data-state="connected"]', WAIT);
    await say(fred, 'are you back?');
    await erin.waitForSelector('#messages li.theirs:has-text("are you back?")', WAIT);
    await say(erin, 'yes');
    await fred.waitForSelector('#messages li.theirs:has-text("yes")', WAIT);
    // A reconnect is not a new arrival: no second join note on either side.
    const notes = async (page, text) => (await messages(page)).filter((m) => m.kind === 'note' && m.text.includes(text)).length;
    assert.equal(await notes(fred, 'erin joined'), 1);
    assert.equal(await notes(erin, 'You joined'), 1);
    await fred.close();
    await erin.close();
  });

  test('fits a phone screen (390 px wide) without sideways scrolling', async () => {
    const room = unique('phone').toLowerCase();
    const phone = await openPage({ width: 390, height: 760 });
    await join(phone, 'dora', room);
    await say(phone, 'a long line that has to wrap on a narrow screen instead of pushing the layout wider than the phone');
    await phone.waitForSelector('#messages li.mine', WAIT);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
    const sendBox = await phone.locator('#say-form').boundingBox();
    assert.ok(sendBox && sendBox.y + sendBox.height <= 760, 'the message box is on screen');
    await phone.screenshot({ path: path.join(SHOTS, 'demo-chat-phone.png') });
    await phone.close();
  });

  test("the page's frame reader handles several frames per message, split frames and heart-beat EOLs", async () => {
    const page = await openPage();
    const result = await page.evaluate(() => {
      const { FrameReader, encodeFrame } = window.stompkitChat;
      const reader = new FrameReader();
      const bytes = (text) => new TextEncoder().encode(text);
      const out = [];
      const push = (text) => out.push(...reader.push(bytes(text)));
      // A heart-beat, two frames and the start of a third in one message; CRLF lines too.
      push('\nMESSAGE\r\ndestination:/topic/a\r\nx:a\\cb\\\\c\\nd\r\n\r\nfirst\0\r\nMESSAGE\ncontent-length:7\n\nsec\0ond\0MESS');
      // The rest of the third frame in two more messages, its body holding a non-ASCII character.
      push('AGE\ndestination:/topic/ü\n\nthi');
      push('rd ✓\0\n');
      const frames = out.map((f) =>
        f.heartBeat ? 'heart-beat' : { command: f.command, headers: f.headers, body: new TextDecoder().decode(f.body) },
      );
      let badLength = 'no error';
      try {
        new FrameReader().push(bytes('MESSAGE\ncontent-length:3x\n\nabc\0'));
      } catch (error) {
        badLength = error.message;
      }
      return {
        frames,
        badLength,
        left: reader.buffer.length,
        encoded: encodeFrame('SEND', { destination: '/topic/x', note: 'a:b\\c\nd\re' }, 'hé', '1.2'),
        encoded11: encodeFrame('SEND', { note: 'a\re' }, '', '1.1'),
      };
    });
    assert.deepEqual(result.frames, [
      'heart-beat',
      { command: 'MESSAGE', headers: { destination: '/topic/a', x: 'a:b\\c\nd' }, body: 'first' },
      'heart-beat',
      { command: 'MESSAGE', headers: { 'content-length': '7' }, body: 'sec\0ond' },
      { command: 'MESSAGE', headers: { destination: '/topic/ü' }, body: 'third ✓' },
      'heart-beat',
    ]);
    assert.equal(result.left, 0);
    assert.equal(result.badLength, 'bad content-length');
    assert.equal(result.encoded, 'SEND\ndestination:/topic/x\nnote:a\\cb\\\\c\\nd\\re\ncontent-length:3\n\nhé\0');
    assert.equal(result.encoded11, 'SEND\nnote:ae\n\n\0');
    await page.close();
  });
});
