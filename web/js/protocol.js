// The WebSocket client of Switchboard's native protocol (/v1/ws): one JSON object per text
// frame, told apart by `type`. It says hello, matches replies to requests by `ref`, keeps the
// connection alive with application pings, and reconnects with exponential backoff after the
// connection drops, saying hello again with the same name and password. In a cluster it knows
// several nodes (`ServerList`, below) and moves to the next one when its node is gone. What to
// do after a reconnect (rejoin rooms, catch up on history) is the caller's business: see app.js.

export const PROTOCOL_VERSION = 1;

/** First reconnect delay; each failed attempt doubles it, up to BACKOFF_MAX_MS. */
export const BACKOFF_START_MS = 250;
export const BACKOFF_MAX_MS = 5000;

/** How long a request waits for its reply before it fails. */
const REPLY_TIMEOUT_MS = 15000;

/**
 * How long a new connection may take to be welcomed. A node that is frozen, or a host that
 * drops packets, may leave a WebSocket connecting for minutes: give up and try the next node.
 */
const CONNECT_TIMEOUT_MS = 10000;

/**
 * How often the page pings. The node closes a connection that sent no frame for its idle
 * timeout (30 s by default; the browser's answers to the node's own WebSocket pings count),
 * so this also keeps the connection open; above all it is how the page notices a connection
 * that went silent without closing (a half-open drop: NAT, Wi-Fi, a suspended laptop).
 */
export const PING_EVERY_MS = 10000;

/**
 * A ping unanswered for this many ping intervals (25 s by default) means the connection is
 * dead. Measured from the ping, not from the last frame: timers of a background tab may run
 * only once a minute.
 */
const DEAD_AFTER_PINGS = 2.5;

/** The shortest ping interval `?ping_ms=` may ask for. */
const MIN_PING_MS = 100;

/** Hello refusals that will not get better by trying again with the same name and password. */
const FATAL_HELLO_CODES = new Set([
  'auth_failed',
  'invalid_name',
  'too_large',
  'unsupported_version',
  'bad_request',
]);

/**
 * Hello refusals after which the same node is tried again (with backoff) rather than the next
 * one: the node is alive, and `name_in_use` usually means it has not yet noticed that our
 * previous connection (to it, or to a node that died) is gone.
 */
const STAY_CODES = new Set(['name_in_use']);

/** A refusal from the node (`error` frame), or a local failure with a code of our own. */
export class ProtocolError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** The WebSocket address of the node that served this page. */
export function defaultUrl(loc = window.location) {
  return endpoint(pageServer(loc));
}

// ---------------------------------------------------------------------------------------------
// The servers: the nodes of the cluster this page may talk to, each known by its WebSocket base
// URL (`ws://host:port`, as `/v1/cluster` gives them) and, once heard from, its node name.

/** The WebSocket base URL (`ws://host:port`) of the node that served this page. */
export function pageServer(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}`;
}

/**
 * A server's base URL in one form, `ws(s)://host:port`, from what a user or a node may write:
 * `ws://h:p`, `wss://h`, `http://h:p` (taken as `ws`), `h:p`, with or without `/v1/ws`. Null when
 * it is not a usable address.
 */
export function normalizeServer(raw) {
  let text = String(raw ?? '').trim();
  if (!text) return null;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `ws://${text}`;
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  const scheme = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' }[url.protocol];
  if (!scheme || !url.host) return null;
  return `${scheme}//${url.host}`;
}

/** The servers listed in the page's `?servers=ws://h1:p1,ws://h2:p2` parameter, if any. */
export function serversFromQuery(search = window.location.search) {
  const value = new URLSearchParams(search).get('servers');
  if (!value) return [];
  return value.split(',').map(normalizeServer).filter(Boolean);
}

/**
 * The page's `?ping_ms=N` parameter: ping every N ms, so that a silent drop is noticed after
 * 2.5 N instead of 25 s. It exists for the browser tests of a half-open drop (a test cannot
 * wait 35 s for each case); only shorter intervals than the default are taken (100 ms at
 * least), anything else (not a whole number, out of range) is ignored. Null when absent.
 */
export function pingFromQuery(search = window.location.search) {
  const raw = new URLSearchParams(search).get('ping_ms');
  if (raw === null || !/^[0-9]{1,9}$/.test(raw)) return null;
  const ms = Number(raw);
  return ms >= MIN_PING_MS && ms <= PING_EVERY_MS ? ms : null;
}

/** The client endpoint of a server: `ws://host:port/v1/ws`. */
export function endpoint(server) {
  return `${server}/v1/ws`;
}

/** Where a server tells about its cluster: `http(s)://host:port/v1/cluster`. */
export function clusterUrl(server) {
  return `${server.replace(/^ws/, 'http')}/v1/cluster`;
}

/**
 * The nodes a page can use, in a fixed order, and the one it is on (or trying). Seeded with the
 * node that served the page and `?servers=`, and completed from `/v1/cluster` (the node itself
 * and its peers) after each sign-in. Nodes are never dropped from it: one that is down now may
 * be back by the time the others are. Plain data, no DOM, so it is tested in node directly.
 */
export class ServerList {
  /** `servers`: base URLs (any form `normalizeServer` takes); the first is the current one. */
  constructor(servers = []) {
    /** [{url, node}], `node` null until the node's name is known. */
    this.entries = [];
    this.index = 0;
    for (const s of servers) this.add(s);
  }

  get size() {
    return this.entries.length;
  }

  /** The server in use, or tried next. */
  get current() {
    return this.entries[this.index] || null;
  }

  /** Adds a server unless known (by URL, or by node name when given); returns its entry. */
  add(raw, node = null) {
    const url = normalizeServer(raw);
    if (!url) return null;
    let entry = (node && this.entries.find((e) => e.node === node)) || this.entries.find((e) => e.url === url);
    if (entry) {
      if (node && !entry.node) entry.node = node;
      return entry;
    }
    entry = { url, node };
    this.entries.push(entry);
    return entry;
  }

  /** Moves to the next server, round robin; returns it. */
  advance() {
    if (this.entries.length) this.index = (this.index + 1) % this.entries.length;
    return this.current;
  }

  /**
   * Names the current server after its `welcome`. An entry of another URL known under the same
   * name (the node's advertised URL, when the page reached it by another) is dropped: the URL
   * that just worked is kept.
   */
  nameCurrent(node) {
    const cur = this.current;
    if (!cur || !node) return;
    cur.node = node;
    const dup = this.entries.findIndex((e) => e !== cur && e.node === node);
    if (dup !== -1) {
      this.entries.splice(dup, 1);
      if (dup < this.index) this.index -= 1;
    }
  }

  /**
   * Folds in a node's `/v1/cluster` reply: its peers, by name and URL. `from` is the entry the
   * reply came from (the node itself, known by the URL that reached it).
   */
  merge(status, from = this.current) {
    if (!status || typeof status !== 'object') return;
    if (from && typeof status.node === 'string' && !from.node) from.node = status.node;
    if (!from || status.node !== from.node) this.add(status.url, status.node);
    for (const peer of Array.isArray(status.peers) ? status.peers : []) {
      if (peer && typeof peer.url === 'string') this.add(peer.url, typeof peer.node === 'string' ? peer.node : null);
    }
  }

  /**
   * Asks the current server for its cluster (`GET /v1/cluster`) and folds the answer in.
   * Resolves true when it did; false when the node could not tell (an older node without the
   * endpoint, or a request the browser refused): the list stays as it was.
   */
  async refresh(fetchImpl = globalThis.fetch) {
    const from = this.current;
    if (!from || !fetchImpl) return false;
    try {
      const res = await fetchImpl(clusterUrl(from.url), { cache: 'no-store' });
      if (!res.ok) return false;
      this.merge(await res.json(), from);
      return true;
    } catch {
      return false;
    }
  }

  /** How to name a server to a user: `node b`, or its host:port while its name is unknown. */
  static label(entry) {
    if (!entry) return '';
    return entry.node ? `node ${entry.node}` : entry.url.replace(/^wss?:\/\//, '');
  }
}

/** Messages that answer a request carry its `ref`; everything else is an event. */
function replyRef(msg) {
  return typeof msg.ref === 'string' ? msg.ref : null;
}

/**
 * A signed-in session that survives reconnects, and moves between the nodes of `servers`.
 *
 * Where it reconnects: after its connection drops, to the same node first; each attempt that
 * fails to get in moves to the next node of the list (round robin), with the backoff growing
 * as before. A `shutdown` notice moves it to the next node at once. `name_in_use` keeps it on
 * the node that said it (alive, just not yet aware that the old session is gone). The first
 * sign-in tries each node once before it gives up.
 *
 * Events (CustomEvent, payload in `detail`):
 * - `welcome`      {welcome, resumed, server}: signed in; `resumed` after a reconnect; `server`
 *                  the entry of `servers` it is on
 * - `frame`        a server message that is not a reply (message, presence, topic, shutdown,
 *                  an error without ref...)
 * - `disconnect`   {code, reason, error, leaving}: the connection dropped (`leaving`: after the
 *                  node's shutdown notice); a reconnect follows
 * - `reconnecting` {attempt, delay, error, server}: the next attempt is scheduled, to `server`
 * - `fatal`        {error}: the node refused the name or password; no more attempts
 */
export class Connection extends EventTarget {
  constructor({ servers = null, name, password = null, client = 'switchboard-web/1', pingEveryMs = null }) {
    super();
    /** Ping interval (`pingEveryMs`, else PING_EVERY_MS) and when an unanswered ping is fatal. */
    this.pingEveryMs = pingEveryMs || PING_EVERY_MS;
    this.deadAfterMs = this.pingEveryMs * DEAD_AFTER_PINGS;
    this.servers = servers && servers.size ? servers : new ServerList([pageServer()]);
    this.name = name;
    this.password = password || null;
    this.client = client;
    this.ws = null;
    this.ready = false;
    this.stopped = false;
    this.everWelcomed = false;
    this.attempt = 0;
    this.nextRef = 1;
    this.pending = new Map();
    this.retryTimer = null;
    this.pingTimer = null;
    this.pingSentAt = null;
    this.helloError = null;
    this.connectTimer = null;
    /** The node said it is going away: move to another one rather than wait for it. */
    this.leaving = false;
    /** Nodes tried by the first sign-in. */
    this.tried = 0;
    this.onOnline = () => this.retryNow();
  }

  /** The endpoint in use, or tried next. */
  get url() {
    return endpoint(this.servers.current.url);
  }

  /** Connects and signs in; resolves with `welcome`, rejects with the first refusal. */
  start() {
    window.addEventListener('online', this.onOnline);
    return new Promise((resolve, reject) => {
      this.firstResult = { resolve, reject };
      this.open();
    });
  }

  /** Says goodbye and closes for good. */
  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    if (this.ws && this.ready) {
      try {
        this.ws.send(JSON.stringify({ type: 'bye' }));
      } catch {
        // Closing anyway.
      }
    }
    this.drop({ code: 1000, reason: 'signed out' });
  }

  /** Sends a request with a fresh `ref`; resolves with its reply, rejects on `error`. */
  request(msg) {
    if (!this.ready) {
      return Promise.reject(new ProtocolError('disconnected', 'not connected to the server'));
    }
    const ref = `w${this.nextRef++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new ProtocolError('timeout', 'the server did not answer in time'));
      }, REPLY_TIMEOUT_MS);
      this.pending.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...msg, ref }));
    });
  }

  /** Tries at once instead of waiting out the backoff (e.g. when the network comes back). */
  retryNow() {
    if (this.retryTimer !== null && !this.stopped) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.open();
    }
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  open() {
    this.retryTimer = null;
    this.helloError = null;
    this.tried += 1;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.onClosed({ code: 1006, reason: String(e) });
      return;
    }
    this.ws = ws;
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(() => {
      if (this.ws === ws && !this.ready) this.drop({ code: 4001, reason: 'the server did not answer in time' });
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      // away_events: `away` frames when someone in our rooms goes away or comes back.
      const hello = { type: 'hello', v: PROTOCOL_VERSION, name: this.name, client: this.client, away_events: true };
      if (this.password) hello.password = this.password;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onclose = (ev) => {
      if (this.ws === ws) this.onClosed({ code: ev.code, reason: ev.reason });
    };
    // An error is always followed by close, which does the work.
    ws.onerror = () => {};
  }

  onFrame(data) {
    // Anything heard answers the question a ping asks.
    this.pingSentAt = null;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    if (!this.ready) {
      if (msg.type === 'welcome') {
        this.onWelcome(msg);
      } else if (msg.type === 'error') {
        // The refusal of our hello; the node closes right after.
        this.helloError = new ProtocolError(msg.code, msg.message);
      }
      return;
    }
    if (msg.type === 'shutdown') this.leaving = true;
    const ref = replyRef(msg);
    if (ref !== null && this.pending.has(ref)) {
      const { resolve, reject, timer } = this.pending.get(ref);
      this.pending.delete(ref);
      clearTimeout(timer);
      if (msg.type === 'error') reject(new ProtocolError(msg.code, msg.message));
      else resolve(msg);
      return;
    }
    this.emit('frame', msg);
  }

  onWelcome(welcome) {
    this.ready = true;
    this.pingSentAt = null;
    this.leaving = false;
    clearTimeout(this.connectTimer);
    this.servers.nameCurrent(welcome.node);
    const resumed = this.everWelcomed;
    this.everWelcomed = true;
    this.attempt = 0;
    this.name = welcome.name;
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.heartbeat(), this.pingEveryMs);
    if (this.firstResult) {
      this.firstResult.resolve(welcome);
      this.firstResult = null;
    }
    this.emit('welcome', { welcome, resumed, server: this.servers.current });
  }

  heartbeat() {
    if (!this.ready) return;
    if (this.pingSentAt !== null) {
      if (Date.now() - this.pingSentAt > this.deadAfterMs) {
        this.drop({ code: 4000, reason: 'no answer from the server' });
      }
      return;
    }
    this.pingSentAt = Date.now();
    try {
      this.ws.send(JSON.stringify({ type: 'ping' }));
    } catch {
      // The close event follows.
    }
  }

  /** Forgets the socket at once (without waiting for a closing handshake) and handles it. */
  drop(info) {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close();
    } catch {
      // Already closed.
    }
    this.onClosed(info);
  }

  onClosed({ code, reason }) {
    this.ws = null;
    const wasReady = this.ready;
    this.ready = false;
    const leaving = this.leaving;
    this.leaving = false;
    clearTimeout(this.connectTimer);
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    const error =
      this.helloError ||
      new ProtocolError('disconnected', reason || `the connection closed (code ${code})`);
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new ProtocolError('disconnected', 'the connection closed before the reply'));
    }
    this.pending.clear();
    if (this.stopped) return;

    // A node we could not get into (unreachable, shutting down, full...) is left for the next
    // one; a refusal of the name by a live node is not.
    const moveOn = !(this.helloError && (STAY_CODES.has(this.helloError.code) || FATAL_HELLO_CODES.has(this.helloError.code)));
    if (this.firstResult) {
      if (moveOn && this.tried < this.servers.size) {
        // Another node may be up: the first sign-in tries each one once.
        this.servers.advance();
        this.open();
        return;
      }
      // The first sign-in failed: tell the form, do not retry behind the user's back.
      const err = this.helloError || new ProtocolError('unreachable', 'could not reach the server');
      this.firstResult.reject(err);
      this.firstResult = null;
      this.stopped = true;
      window.removeEventListener('online', this.onOnline);
      return;
    }
    if (this.helloError && FATAL_HELLO_CODES.has(this.helloError.code)) {
      this.stopped = true;
      window.removeEventListener('online', this.onOnline);
      this.emit('fatal', { error: this.helloError });
      return;
    }
    if (wasReady) this.emit('disconnect', { code, reason, error, leaving });
    let delay = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
    if (wasReady) {
      // The node we were on: try it again, unless it said it is going away.
      if (leaving && this.servers.size > 1) {
        this.servers.advance();
        delay = 0;
      }
    } else if (moveOn) {
      this.servers.advance();
    }
    this.attempt += 1;
    this.emit('reconnecting', { attempt: this.attempt, delay, error, server: this.servers.current });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
