// The network drops under a browser user while the node stays up: a TCP proxy of the test's own
// stands between the page and the node. (a) The proxy destroys both sockets of every connection;
// (b) it goes silent without closing anything (a half-open drop: only the page's pings can tell).
// Meanwhile others send room and direct messages. The page shows it is reconnecting, comes back
// by itself once the network does, and shows every missed message exactly once, in the order of
// the node's history.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before } from 'node:test';

import {
  ConsoleClient,
  Node,
  WAIT_MS,
  assertOnceInOrder,
  closePage,
  freePort,
  joinRoom,
  launchBrowser,
  nodeHistory,
  paneMessages,
  say,
  screenshot,
  signIn,
  test,
  tmpDir,
  waitForMessage,
} from './lib.mjs';

/**
 * The node drops a connection it heard nothing from for 5 s (the default is 30): in the
 * half-open case it keeps the page's dead session until then, so the page's first attempts
 * meet `name_in_use` and must retry, and messages sent meanwhile go into the void.
 */
const NODE_IDLE_SECS = '5';

/** The page's ping interval in the half-open case (`?ping_ms=`): dead after 2.5 of them. */
const PING_MS = 300;

/**
 * A TCP proxy to the node on `targetPort`. `cut()` destroys both sockets of every connection;
 * `silence()` stops forwarding on every connection but closes nothing (data is read and
 * dropped, so neither end sees an error or back-pressure); both refuse new connections (closed
 * at once) until `restore()`. Forwarding honours back-pressure: nothing queues without bound.
 */
class DropProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.pairs = new Set();
    this.down = false;
    this.refused = 0;
  }

  async listen() {
    this.server = net.createServer((client) => this.accept(client));
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
  }

  get url() {
    return `http://127.0.0.1:${this.port}/`;
  }

  accept(client) {
    client.on('error', () => {});
    if (this.down) {
      this.refused += 1;
      client.destroy();
      return;
    }
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    upstream.on('error', () => {});
    const pair = { client, upstream, silent: false };
    this.pairs.add(pair);
    const forward = (from, to) => {
      from.on('data', (chunk) => {
        if (pair.silent) return;
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('close', () => {
        if (pair.silent) return;
        to.destroy();
        this.pairs.delete(pair);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  }

  /** Both sockets of every connection are destroyed, and new ones refused. */
  cut() {
    this.down = true;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Every connection goes silent (nothing forwarded, nothing closed); new ones are refused. */
  silence() {
    this.down = true;
    for (const pair of this.pairs) {
      pair.silent = true;
      // Paused sockets would fill the TCP windows and look stuck; a dead path reads and drops.
      pair.client.resume();
      pair.upstream.resume();
    }
  }

  /** New connections are forwarded again (the silent ones stay silent). */
  restore() {
    this.down = false;
  }

  close() {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

let node;
let browser;
const consoles = [];
const proxies = [];

before(async () => {
  node = new Node({ port: await freePort(), dataDir: tmpDir(), args: ['--idle-timeout', NODE_IDLE_SECS] });
  await node.start();
  browser = await launchBrowser();
});

after(async () => {
  for (const c of consoles) await c.close();
  for (const p of proxies) await p.close();
  await browser?.close();
  await node?.stop();
});

const bannerState = (page) => page.evaluate(() => document.querySelector('[data-testid=banner]').dataset.state || '');

/** A console client signed in (registered) and, with `room`, in it. */
async function consoleUser(name, room) {
  const c = new ConsoleClient(node, name, { password: `${name}-secret` });
  consoles.push(c);
  await c.waitForLine((l) => l.startsWith(`* connected to node web1 as ${name} (registered)`));
  if (room) {
    c.send(`/join ${room}`);
    await c.waitForLine((l) => l.startsWith(`* joined #${room}`));
  }
  return c;
}

/**
 * The scenario of both cases: `user` (registered, on a page behind a proxy) is in `room` and
 * has a conversation with `dmFrom`; `roomFrom` talks in the room. `drop(proxy)` breaks the
 * network; while it is broken both keep talking; then it comes back.
 */
async function dropAndRecover(t, { user, roomFrom, dmFrom, room, query = '', drop }) {
  const password = `${user}-secret`;
  const proxy = new DropProxy(node.port);
  proxies.push(proxy);
  await proxy.listen();
  const page = await signIn(browser, { url: `${proxy.url}${query}` }, user, { password });
  await joinRoom(page, room);
  const talker = await consoleUser(roomFrom, room);
  const friend = await consoleUser(dmFrom);

  // Before: a room message, and a direct conversation the page has loaded.
  talker.send('room before');
  await waitForMessage(page, 'room before', roomFrom);
  friend.send(`/msg ${user} dm before`);
  const dmKey = `@${[user, dmFrom].sort().join(':')}`;
  await page.click(`[data-testid=dm-list] [data-conv="${dmKey}"]`);
  await waitForMessage(page, 'dm before', dmFrom);
  await say(page, 'reply before');
  await friend.waitForLine(`[@${user}] ${user}: reply before`);
  await page.click(`[data-testid=room-list] [data-conv="#${room}"]`);
  await waitForMessage(page, 'room before', roomFrom);

  // The network breaks; the others keep talking.
  drop(proxy);
  const roomMissed = ['room missed 1', 'room missed 2', 'room missed 3'];
  const dmMissed = ['dm missed 1', 'dm missed 2', 'dm missed 3'];
  for (let i = 0; i < 3; i++) {
    talker.send(roomMissed[i]);
    friend.send(dmMissed[i]);
  }
  await talker.waitForLine(`[#${room}] ${roomFrom}: room missed 3`);
  await friend.waitForLine(`[@${user}] ${dmFrom}: dm missed 3`);

  // The page noticed by itself and says so, and stays away while the network is down.
  await page.waitForFunction(() => document.querySelector('[data-testid=banner]').dataset.state === 'reconnecting', null, { timeout: WAIT_MS });
  assert.match(await page.textContent('[data-testid=banner-status]'), /^Reconnecting… attempt \d+/);
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=banner]').dataset.attempt) >= n, 2);
  assert.ok(proxy.refused >= 1, 'the page tried again while the network was down');
  assert.equal(await bannerState(page), 'reconnecting');
  assert.deepEqual((await paneMessages(page)).map((m) => m.text), ['room before'], 'nothing arrived while down');
  await screenshot(page, `netdrop-${user}-reconnecting`);

  // The network is back: the page reconnects by itself and fills in what it missed.
  proxy.restore();
  await page.waitForFunction(() => document.querySelector('[data-testid=banner-status]')?.textContent === 'Reconnected.');
  await waitForMessage(page, 'room missed 3', roomFrom);
  talker.send('room after');
  await waitForMessage(page, 'room after', roomFrom);
  const roomMsgs = await paneMessages(page);
  assert.deepEqual(
    roomMsgs.map((m) => m.text),
    ['room before', ...roomMissed, 'room after'],
  );
  assertOnceInOrder(roomMsgs);
  const roomStream = await nodeHistory(page, { room }, { name: `${user}-probe`, node });
  assert.deepEqual(
    roomMsgs.map((m) => m.id),
    roomStream.map((m) => m.id),
    'the room in the page is the node\'s stream',
  );

  await page.click(`[data-testid=dm-list] [data-conv="${dmKey}"]`);
  await waitForMessage(page, 'dm missed 3', dmFrom);
  await say(page, 'reply after');
  await friend.waitForLine(`[@${user}] ${user}: reply after`);
  await waitForMessage(page, 'reply after', user);
  const dmMsgs = await paneMessages(page);
  assert.deepEqual(
    dmMsgs.map((m) => `${m.from}: ${m.text}`),
    [`${dmFrom}: dm before`, `${user}: reply before`, ...dmMissed.map((d) => `${dmFrom}: ${d}`), `${user}: reply after`],
  );
  assertOnceInOrder(dmMsgs);
  const dmStream = await nodeHistory(page, { with: dmFrom }, { name: user, password, node });
  assert.deepEqual(
    dmMsgs.map((m) => m.id),
    dmStream.map((m) => m.id),
    'the conversation in the page is the node\'s stream',
  );
  t.diagnostic(`the proxy refused ${proxy.refused} attempt(s) while down`);
  await screenshot(page, `netdrop-${user}-after`);
  await closePage(page);
}

test('connections cut by the network: the page reconnects and misses nothing', async (t) => {
  await dropAndRecover(t, {
    user: 'alice',
    roomFrom: 'bob',
    dmFrom: 'carol',
    room: 'general',
    drop: (proxy) => proxy.cut(),
  });
});

test('a silent half-open drop: the page notices by its pings and misses nothing', async (t) => {
  await dropAndRecover(t, {
    user: 'dana',
    roomFrom: 'erin',
    dmFrom: 'finn',
    room: 'lounge',
    query: `?ping_ms=${PING_MS}`,
    drop: (proxy) => {
      proxy.silence();
      // Nothing was closed: only the page's pings can tell it the connection is dead.
      assert.ok(proxy.pairs.size >= 1, 'the page\'s connection is held open, silent');
    },
  });
});
