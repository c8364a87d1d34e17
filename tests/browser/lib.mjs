// Helpers of the browser tests: a Switchboard node per test on a free port, Debian's Chromium
// driven by playwright-core, console clients in plain mode, and screenshots that are checked.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.SWITCHBOARD_BIN || path.join(ROOT, 'target/debug/switchboard');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** How long a wait on the page or a console client may take before the test fails. */
export const WAIT_MS = 20000;

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

/** Takes a screenshot under test-artifacts/ and checks it is a real picture of the page. */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  const head = fs.readFileSync(file).subarray(0, 8);
  assert.deepEqual([...head], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file} is not a PNG`);
  assert.ok(fs.statSync(file).size > 5000, `${file} is suspiciously small`);
  return file;
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
