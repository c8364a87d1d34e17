// Helpers of the browser tests: a Switchboard node per test on a free port, Debian's Chromium
// driven by playwright-core, console clients in plain mode, and screenshots that are checked
// for what a user would see in them (png.mjs decodes them).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { test as nodeTest } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { decodePng, distinctColours } from './png.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.SWITCHBOARD_BIN || path.join(ROOT, 'target/debug/switchboard');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** How long a wait on the page or a console client may take before the test fails. */
export const WAIT_MS = 20000;

/**
 * How long one test may take before it fails. Set on each test (by `test` below) rather than
 * with `node --test-timeout`, which node 18 (Debian 12's) does not have.
 */
export const TEST_TIMEOUT_MS = 180000;

/** node:test's `test(name, fn)`, with the time limit TEST_TIMEOUT_MS: the tests' `test`. */
export function test(name, fn) {
  return nodeTest(name, { timeout: TEST_TIMEOUT_MS }, fn);
}

/** Every child process started here, so that none outlives the tests. */
const children = new Set();
process.on('exit', () => {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** A port nobody listens on: bind port 0, read what the kernel chose, let it go. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function tmpDir(prefix = 'switchboard-web-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (async, returns truthy when done) every 50 ms, up to `timeout`. */
export async function until(check, what, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The cluster secret of the tests' clusters. */
export const CLUSTER_SECRET = 'test-cluster-secret-0123';

/**
 * A node run as `switchboard serve`, on one port and data directory across restarts. Alone by
 * default (named web1); `Node.cluster(name, {peers})` makes one of a cluster.
 */
export class Node {
  constructor({ port, dataDir, name = 'web1', args = [] }) {
    this.port = port;
    this.dataDir = dataDir;
    this.name = name;
    this.args = args;
    this.proc = null;
    this.log = [];
  }

  static async start() {
    const node = new Node({ port: await freePort(), dataDir: tmpDir() });
    await node.start();
    return node;
  }

  /**
   * Starts a node of a test cluster: fast heartbeats (100 ms) and failure detection (800 ms),
   * linking to `peers` (other Nodes), with any `extra` flags.
   */
  static async cluster(name, { peers = [], extra = [] } = {}) {
    const args = ['--cluster-secret', CLUSTER_SECRET, '--heartbeat-ms', '100', '--peer-timeout-ms', '800', ...extra];
    for (const p of peers) args.push('--peer', p.wsUrl);
    const node = new Node({ port: await freePort(), dataDir: tmpDir(), name, args });
    await node.start();
    return node;
  }

  /** The node's view of the cluster (`GET /v1/cluster`). */
  async clusterStatus() {
    const r = await fetch(`${this.url}v1/cluster`);
    return r.json();
  }

  /** Waits until this node sees `peer` (a name) in `state` (`up`, `down`...). */
  waitForPeer(peer, state = 'up') {
    return until(async () => {
      try {
        const status = await this.clusterStatus();
        return status.peers.some((p) => p.node === peer && p.state === state);
      } catch {
        return false;
      }
    }, `node ${this.name} to see ${peer} ${state}`);
  }

  get url() {
    return `http://127.0.0.1:${this.port}/`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}`;
  }

  async start() {
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--node-name', this.name, ...this.args];
    const proc = track(spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } }));
    this.proc = proc;
    readline.createInterface({ input: proc.stderr }).on('line', (l) => {
      this.log.push(l);
      if (this.log.length > 200) this.log.shift();
    });
    let exited = null;
    proc.once('exit', (code, signal) => {
      exited = { code, signal };
    });
    await until(async () => {
      if (exited) throw new Error(`the node exited (${JSON.stringify(exited)}): ${this.log.join('\n')}`);
      try {
        const r = await fetch(`${this.url}healthz`);
        return r.ok;
      } catch {
        return false;
      }
    }, `the node on port ${this.port} to be healthy`);
  }

  /** Stops the node with SIGTERM (it tells clients why) and waits for it to exit. */
  async stop(signal = 'SIGTERM') {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
    await exited;
    clearTimeout(timer);
    this.proc = null;
  }
}

/** `switchboard chat --plain`: lines in on stdin, one line per event out on stdout. */
export class ConsoleClient {
  constructor(node, name, { password } = {}) {
    this.name = name;
    this.lines = [];
    const args = ['chat', '--plain', '--server', node.wsUrl, '--name', name];
    if (password) args.push('--password', password);
    this.proc = track(spawn(BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    readline.createInterface({ input: this.proc.stdout }).on('line', (l) => this.lines.push(l));
    this.proc.stderr.on('data', () => {});
    this.exited = new Promise((r) => this.proc.once('exit', r));
  }

  send(line) {
    this.proc.stdin.write(`${line}\n`);
  }

  /** Waits for an output line equal to `want` (string) or accepted by it (function). */
  waitForLine(want, timeout = WAIT_MS) {
    const ok = typeof want === 'function' ? want : (l) => l === want;
    return until(() => this.lines.find(ok), `console ${this.name} to print ${want}\n--- it printed:\n${this.lines.join('\n')}`, timeout);
  }

  count(line) {
    return this.lines.filter((l) => l === line).length;
  }

  /** Ends stdin (the client says goodbye once its replies are in) and waits for the exit. */
  async close() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Debian's Chromium, headless, with a fresh profile (playwright makes a new user data dir). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A new browser profile with the page open; page errors fail the test at its end. `prepare`
 * (async, given the page) runs before the page is loaded, e.g. to route its WebSocket.
 */
export async function openPage(browser, node, { viewport = { width: 1200, height: 760 }, prepare } = {}) {
  const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(m.text());
  });
  page.setDefaultTimeout(WAIT_MS);
  if (prepare) await prepare(page);
  await page.goto(node.url);
  return page;
}

/** Opens the page and signs in; returns the page once the chat is shown. */
export async function signIn(browser, node, name, { password, viewport, prepare } = {}) {
  const page = await openPage(browser, node, { viewport, prepare });
  await page.getByLabel('Name', { exact: true }).fill(name);
  if (password) await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('[data-testid=app]:not([hidden])');
  await page.waitForFunction((n) => document.querySelector('[data-testid=me-name]').textContent === n, name);
  return page;
}

/** Joins (or creates) a room from the sidebar and waits for it to be shown. */
export async function joinRoom(page, room) {
  await page.getByLabel('Join or create a room').fill(room);
  await page.getByLabel('Join or create a room').press('Enter');
  await page.waitForFunction((r) => document.querySelector('[data-testid=conv-title]').textContent === `#${r}`, room);
}

/** Types a message and sends it with Enter. */
export async function say(page, text) {
  const box = page.getByTestId('composer-input');
  await box.fill(text);
  await box.press('Enter');
}

/** Waits until the message pane shows a message with this text (and sender, if given). */
export async function waitForMessage(page, text, from) {
  await page.waitForFunction(
    ([t, f]) =>
      [...document.querySelectorAll('[data-testid=message-list] [data-testid=message]')].some(
        (m) => m.querySelector('[data-testid=message-text]').textContent === t && (!f || m.dataset.from === f),
      ),
    [text, from],
  );
}

/** The texts of the messages in the pane, top to bottom. */
export function paneTexts(page) {
  return page.$$eval('[data-testid=message-list] [data-testid=message-text]', (els) => els.map((e) => e.textContent));
}

/** The pane's messages, top to bottom, as {from, text, stream, id, origin, oseq}. */
export async function paneMessages(page) {
  const msgs = await page.$$eval('[data-testid=message-list] [data-testid=message]', (els) =>
    els.map((e) => ({
      from: e.dataset.from,
      id: e.dataset.id,
      stream: e.dataset.stream,
      text: e.querySelector('[data-testid=message-text]').textContent,
    })),
  );
  // An id is `origin-oseq` (a node name may itself contain '-').
  return msgs.map((m) => {
    const cut = m.id.lastIndexOf('-');
    return { ...m, origin: m.id.slice(0, cut), oseq: Number(m.id.slice(cut + 1)) };
  });
}

/**
 * Checks that messages accepted by one node are each there once, in that node's order: with a
 * single node, a stream's order is its origin order, so the `oseq`s only go up.
 */
export function assertOnceInOrder(msgs, origin = 'web1') {
  assert.deepEqual(msgs.map((m) => m.origin), msgs.map(() => origin), 'every message is from the one node');
  for (let i = 1; i < msgs.length; i++) {
    assert.ok(msgs[i - 1].oseq < msgs[i].oseq, `${msgs[i - 1].id} then ${msgs[i].id}: once each, in stream order`);
  }
}

/**
 * A stream as the node has it (up to 500 messages, in stream order), read by a session of its
 * own from the page: `hello` as `name` (and `password`), then `history` of `target` (`{room}`
 * or `{with}`). It asks the page's own node, or `node` (a Node) when given.
 */
export function nodeHistory(page, target, { name, password, node } = {}) {
  return page.evaluate(
    ([tgt, n, pw, base]) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`${base || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`}/v1/ws`);
        ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', v: 1, name: n, ...(pw ? { password: pw } : {}) }));
        ws.onerror = () => reject(new Error('the probe connection failed'));
        ws.onmessage = (e) => {
          const f = JSON.parse(e.data);
          if (f.type === 'welcome') ws.send(JSON.stringify({ type: 'history', ...tgt, limit: 500, ref: 'h' }));
          else if (f.type === 'error') reject(new Error(`${f.code}: ${f.message}`));
          else if (f.type === 'history' && f.ref === 'h') {
            ws.send(JSON.stringify({ type: 'bye' }));
            ws.close();
            resolve(f.messages);
          }
        };
      }),
    [target, name, password, node ? node.wsUrl : null],
  );
}

/**
 * A screenshot of a real page has text, borders and shades: hundreds of colours. A blank or
 * flat image (nothing painted, one background) has a handful.
 */
const MIN_COLOURS = 200;

/** Antialiased text over its background gives a few colours at least; a blank box gives one. */
const MIN_TEXT_COLOURS = 3;

/**
 * The boxes (CSS pixels, in the viewport) of what a user must see, as the page lays them out:
 * each `{id, x, y, width, height, shown}`, for the sign-in form or the chat (sidebar, message
 * pane, composer); and the message texts that are on top where they are (not covered, e.g. by
 * the phone drawer), with the viewport's size.
 */
function layoutOf(page) {
  return page.evaluate(() => {
    const box = (el, id) => {
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      const shown = r.width > 0 && r.height > 0 && style.visibility !== 'hidden' && !el.closest('[hidden]');
      return { id, x: r.left, y: r.top, width: r.width, height: r.height, shown };
    };
    const byId = (id) => box(document.querySelector(`[data-testid=${id}]`), id);
    const app = !document.querySelector('[data-testid=app]').hidden;
    const ids = app ? ['sidebar', 'messages', 'composer-input', 'composer-send'] : ['signin-name', 'signin-submit'];
    const texts = [...document.querySelectorAll('[data-testid=message-list] [data-testid=message-text]')]
      .filter((t) => {
        const r = t.getBoundingClientRect();
        if (r.width < 1 || r.height < 1 || r.top < 0 || r.bottom > innerHeight) return false;
        const hit = document.elementFromPoint(r.left + Math.min(r.width / 2, 8), r.top + r.height / 2);
        return hit !== null && t.closest('[data-testid=message]').contains(hit);
      })
      .map((t) => box(t, `message "${t.textContent.slice(0, 30)}"`));
    return { app, width: innerWidth, height: innerHeight, boxes: ids.map(byId), texts };
  });
}

const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

/**
 * Checks what a user would see in a screenshot: the picture is of the whole viewport and not
 * blank; the sign-in form, or the sidebar (beside the conversation, or as the phone drawer when
 * open), the message pane and the composer, are visible, inside the viewport and (but for the
 * drawer, which covers the pane by design) do not overlap; and every message text on top is
 * painted (its box in the image is not one flat colour).
 */
function checkScreenshot(img, layout, file) {
  assert.deepEqual([img.width, img.height], [layout.width, layout.height], `${file} is not the whole viewport`);
  const colours = distinctColours(img);
  assert.ok(colours >= MIN_COLOURS, `${file} looks blank: ${colours} colours`);
  // Under 700 px the sidebar is a drawer (docs/web-client.md): hidden, or over the pane.
  const drawer = layout.width < 700;
  const must = layout.boxes.filter((b) => !(drawer && b.id === 'sidebar'));
  const shown = layout.boxes.filter((b) => b.shown);
  for (const b of must) assert.ok(b.shown, `${file}: ${b.id} is not visible`);
  for (const b of shown) {
    const inside = b.x >= 0 && b.y >= 0 && b.x + b.width <= layout.width + 0.5 && b.y + b.height <= layout.height + 0.5;
    assert.ok(inside, `${file}: ${b.id} is not inside the viewport: ${JSON.stringify(b)}`);
  }
  const apart = shown.filter((b) => !(drawer && b.id === 'sidebar'));
  for (let i = 0; i < apart.length; i++) {
    for (let j = i + 1; j < apart.length; j++) {
      assert.ok(!overlaps(apart[i], apart[j]), `${file}: ${apart[i].id} and ${apart[j].id} overlap`);
    }
  }
  for (const t of layout.texts) {
    const n = distinctColours(img, t);
    assert.ok(n >= MIN_TEXT_COLOURS, `${file}: the text of ${t.id} is not painted (${n} colour(s) in its box)`);
  }
}

/**
 * Takes a screenshot as test-artifacts/NAME.png (or `file`) and checks what a user would see in
 * it (see checkScreenshot): decoded and measured, not just taken. Returns the file and how many
 * message texts were checked in the picture.
 */
export async function screenshot(page, name, { file = path.join(ARTIFACTS, `${name}.png`) } = {}) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // The layout is read on both sides of the picture, so that the boxes are those of the
  // picture: a page still moving (a banner coming or going) is taken again.
  let layout = await layoutOf(page);
  for (let tries = 1; ; tries++) {
    await page.screenshot({ path: file });
    const after = await layoutOf(page);
    const still = JSON.stringify(after) === JSON.stringify(layout);
    layout = after;
    if (still || tries === 3) break;
  }
  checkScreenshot(decodePng(fs.readFileSync(file)), layout, file);
  return { file, texts: layout.texts.length };
}

/** Text visible in the page (for "the user sees ..." checks). */
export function visibleText(page) {
  return page.evaluate(() => document.body.innerText);
}

/**
 * Closes a page's context and checks that the page raised no script error. `allow` (a RegExp)
 * lets through console errors a test expects.
 */
export async function closePage(page, { allow } = {}) {
  const errors = page.errors.filter(
    (e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e) && !(allow && allow.test(e)),
  );
  await page.context().close();
  assert.deepEqual(errors, [], 'the page logged errors');
}
