// One conversation across two linked nodes, joining every kind of client Switchboard speaks
// with: a browser user, a console user (plain mode), a seed 001 plain-text WebSocket client,
// a seed 003 JSON client and a seed 002 relay client. The seed clients are written here from
// ../shared/seeds/WIRE-NOTES.md: the WebSocket ones run in a blank browser page (as seed 003's
// own client did), the relay one on raw TCP sockets.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before } from 'node:test';

import {
  ConsoleClient,
  Node,
  closePage,
  freePort,
  joinRoom,
  launchBrowser,
  paneMessages,
  say,
  screenshot,
  signIn,
  test,
  until,
  waitForMessage,
} from './lib.mjs';

let a;
let b;
let relayPort;
let browser;
let carol;
let zoeInbox;

before(async () => {
  relayPort = await freePort();
  a = await Node.cluster('a', { extra: ['--relay-listen', `127.0.0.1:${relayPort}`] });
  b = await Node.cluster('b', { peers: [a] });
  await a.waitForPeer('b', 'up');
  await b.waitForPeer('a', 'up');
  browser = await launchBrowser();
});

after(async () => {
  await carol?.close();
  zoeInbox?.server.close();
  await browser?.close();
  await b?.stop();
  await a?.stop();
});

/**
 * Seed 001 and 003 clients in a blank page: each WebSocket logs what it receives in
 * `window.got[name]`. Seed 001 sends raw text; seed 003 sends JSON, `ping` first.
 */
async function seedPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  // A page of the node's own (a blank page's opaque origin may not open local sockets).
  await page.goto(`${a.url}healthz`);
  await page.evaluate(() => {
    window.got = {};
    window.socks = {};
  });
  return page;
}

function openSeed001(page, node, name) {
  return page.evaluate(
    ([url, n]) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`${url}/ws?name=${n}`);
        window.got[n] = [];
        window.socks[n] = ws;
        ws.onmessage = (e) => window.got[n].push(e.data);
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error('seed 001 connection failed'));
      }),
    [node.wsUrl, name],
  );
}

function openSeed003(page, node, nickname) {
  return page.evaluate(
    ([url, n]) =>
      new Promise((resolve, reject) => {
        const uuid = crypto.randomUUID();
        const ws = new WebSocket(`${url}/?uuid=${uuid}`);
        window.got[n] = [];
        window.socks[n] = ws;
        ws.onmessage = (e) => window.got[n].push(JSON.parse(e.data));
        ws.onopen = () => {
          ws.send(JSON.stringify({ uuid, nickname: n, message: 'ping' }));
          resolve();
        };
        ws.onerror = () => reject(new Error('seed 003 connection failed'));
      }),
    [node.wsUrl, nickname],
  );
}

const sendSeed001 = (page, name, text) => page.evaluate(([n, t]) => window.socks[n].send(t), [name, text]);
const sendSeed003 = (page, nickname, text) =>
  page.evaluate(([n, t]) => window.socks[n].send(JSON.stringify({ uuid: 'x', nickname: n, message: t })), [nickname, text]);
const received = (page, name) => page.evaluate((n) => window.got[n], name);
const waitReceived = (page, name, ok, what) =>
  until(async () => (await received(page, name)).some(ok), `${name} to receive ${what}`);

/** One seed 002 message on its own TCP connection; resolves with the server's answer. */
function relaySend(text) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(relayPort, '127.0.0.1', () => sock.end(text));
    let reply = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => (reply += d));
    sock.on('end', () => resolve(reply));
    sock.on('error', reject);
  });
}

/** A relay client's own listener: every connection the relay dials is one message. */
function relayInbox() {
  return new Promise((resolve) => {
    const inbox = { messages: [], server: null, port: 0 };
    inbox.server = net.createServer((sock) => {
      let text = '';
      sock.setEncoding('utf8');
      sock.on('data', (d) => (text += d));
      sock.on('end', () => inbox.messages.push(text));
    });
    inbox.server.listen(0, '127.0.0.1', () => {
      inbox.port = inbox.server.address().port;
      resolve(inbox);
    });
  });
}

test('one conversation across two nodes: browser, console, seed 001, seed 002 and seed 003 clients', async () => {
  // The browser user on b, the console user on a, both in the lobby.
  const alice = await signIn(browser, b, 'alice');
  await joinRoom(alice, 'lobby');
  carol = new ConsoleClient(a, 'carol');
  await carol.waitForLine((l) => l.startsWith('* connected to node a as carol'));
  carol.send('/join lobby');
  await carol.waitForLine((l) => l.startsWith('* joined #lobby'));

  // A seed 001 client on a, a seed 003 client on b.
  const seeds = await seedPage();
  await openSeed001(seeds, a, 'tex');
  await openSeed003(seeds, b, 'jay');
  // jay's ping announced it (the sender hears its own ping, as in the original).
  await waitReceived(seeds, 'jay', (m) => m.nickname === 'jay' && m.message === 'ping', 'its own ping');

  // Everyone hears everyone in the lobby, across the two nodes: each speaks once the last
  // message has arrived, as people in a conversation do.
  await sendSeed001(seeds, 'tex', 'hello from seed 001');
  await waitForMessage(alice, 'hello from seed 001', 'tex');
  await sendSeed003(seeds, 'jay', 'hello from seed 003');
  await waitForMessage(alice, 'hello from seed 003', 'jay');
  await say(alice, 'hello from the browser');
  await waitForMessage(alice, 'hello from the browser', 'alice');
  carol.send('hello from the console');
  await waitForMessage(alice, 'hello from the console', 'carol');

  const lobby = ['tex: hello from seed 001', 'jay: hello from seed 003', 'alice: hello from the browser', 'carol: hello from the console'];
  assert.deepEqual(
    (await paneMessages(alice)).map((m) => `${m.from}: ${m.text}`),
    lobby,
  );
  for (const line of lobby) await carol.waitForLine(`[#lobby] ${line}`);
  // Seed 001's format: `<sender>: <text>`, one frame each, its own message included.
  await until(async () => (await received(seeds, 'tex')).length >= 4, 'tex to hear all four');
  assert.deepEqual(await received(seeds, 'tex'), lobby);
  // Seed 003's format: {uuid, nickname, message}, its own message included; the ping and the
  // "is connected" announcements of later arrivals come before.
  await until(
    async () => (await received(seeds, 'jay')).filter((m) => m.message !== 'ping').length >= 4,
    'jay to hear all four',
  );
  const jay = (await received(seeds, 'jay')).filter((m) => m.message !== 'ping');
  assert.deepEqual(
    jay.map((m) => `${m.nickname}: ${m.message}`),
    lobby,
  );
  assert.ok(jay.every((m) => typeof m.uuid === 'string' && m.uuid.length > 0));

  // The relay client zoe registers on a and writes to alice (on b) by name.
  zoeInbox = await relayInbox();
  assert.equal(await relaySend(`127.0.0.1:${zoeInbox.port}$$zoe$$INIT#`), 'SUCCESS\n');
  assert.equal(await relaySend('zoe$$alice$$hi alice, from the relay#'), '');
  await alice.waitForSelector('[data-testid=dm-list] [data-conv="@alice:zoe"]');
  await alice.click('[data-testid=dm-list] [data-conv="@alice:zoe"]');
  await waitForMessage(alice, 'hi alice, from the relay', 'zoe');
  // zoe is a member of the directory like anyone: the online list shows it.
  await alice.waitForSelector('[data-testid=online-list] >> text=zoe');
  // alice answers from the browser, carol from the console: zoe's listener is dialled.
  await say(alice, 'hi zoe, from the browser');
  carol.send('/msg zoe hi zoe, from the console');
  await until(() => zoeInbox.messages.length >= 2, 'zoe to be dialled twice');
  assert.deepEqual([...zoeInbox.messages].sort(), [
    'alice$$zoe$$hi zoe, from the browser#',
    'carol$$zoe$$hi zoe, from the console#',
  ]);
  // zoe writes to carol too; an unknown name is NOT-FOUND.
  assert.equal(await relaySend('zoe$$carol$$and hello carol#'), '');
  await carol.waitForLine('[@zoe] zoe: and hello carol');
  assert.equal(await relaySend('zoe$$nobody$$anyone?#'), 'nobody$$NOT-FOUND#');
  await screenshot(alice, 'gateways-dm');

  // Nothing was doubled anywhere.
  assert.equal(carol.count('[#lobby] tex: hello from seed 001'), 1);
  assert.equal((await received(seeds, 'tex')).length, 4);
  assert.deepEqual(
    (await paneMessages(alice)).map((m) => `${m.from}: ${m.text}`),
    ['zoe: hi alice, from the relay', 'alice: hi zoe, from the browser'],
  );
  await seeds.context().close();
  await closePage(alice);
});
