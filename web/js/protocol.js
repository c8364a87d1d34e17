// The WebSocket client of Switchboard's native protocol (/v1/ws): one JSON object per text
// frame, told apart by `type`. It says hello, matches replies to requests by `ref`, keeps the
// connection alive with application pings, and reconnects with exponential backoff after the
// connection drops, saying hello again with the same name and password. What to do after a
// reconnect (rejoin rooms, catch up on history) is the caller's business: see app.js.

export const PROTOCOL_VERSION = 1;

/** First reconnect delay; each failed attempt doubles it, up to BACKOFF_MAX_MS. */
export const BACKOFF_START_MS = 250;
export const BACKOFF_MAX_MS = 5000;

/** How long a request waits for its reply before it fails. */
const REPLY_TIMEOUT_MS = 15000;

/**
 * The node closes a connection that sent no frame for its idle timeout (30 s by default), and
 * WebSocket-level pongs do not count: send an application `ping` well within that.
 */
const PING_EVERY_MS = 10000;

/**
 * A ping unanswered for this long means the connection is dead. Measured from the ping, not
 * from the last frame: timers of a background tab may run only once a minute.
 */
const DEAD_AFTER_MS = 25000;

/** Hello refusals that will not get better by trying again with the same name and password. */
const FATAL_HELLO_CODES = new Set([
  'auth_failed',
  'invalid_name',
  'too_large',
  'unsupported_version',
  'bad_request',
]);

/** A refusal from the node (`error` frame), or a local failure with a code of our own. */
export class ProtocolError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** The WebSocket address of the node that served this page. */
export function defaultUrl(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/v1/ws`;
}

/** Messages that answer a request carry its `ref`; everything else is an event. */
function replyRef(msg) {
  return typeof msg.ref === 'string' ? msg.ref : null;
}

/**
 * A signed-in session that survives reconnects.
 *
 * Events (CustomEvent, payload in `detail`):
 * - `welcome`      {welcome, resumed}: signed in; `resumed` after a reconnect
 * - `frame`        a server message that is not a reply (message, presence, topic, shutdown,
 *                  an error without ref...)
 * - `disconnect`   {code, reason, error}: the connection dropped; a reconnect follows
 * - `reconnecting` {attempt, delay, error}: the next attempt is scheduled
 * - `fatal`        {error}: the node refused the name or password; no more attempts
 */
export class Connection extends EventTarget {
  constructor({ url = defaultUrl(), name, password = null, client = 'switchboard-web/1' }) {
    super();
    this.url = url;
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
    this.onOnline = () => this.retryNow();
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
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.onClosed({ code: 1006, reason: String(e) });
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const hello = { type: 'hello', v: PROTOCOL_VERSION, name: this.name, client: this.client };
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
    const resumed = this.everWelcomed;
    this.everWelcomed = true;
    this.attempt = 0;
    this.name = welcome.name;
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.heartbeat(), PING_EVERY_MS);
    if (this.firstResult) {
      this.firstResult.resolve(welcome);
      this.firstResult = null;
    }
    this.emit('welcome', { welcome, resumed });
  }

  heartbeat() {
    if (!this.ready) return;
    if (this.pingSentAt !== null) {
      if (Date.now() - this.pingSentAt > DEAD_AFTER_MS) {
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

    if (this.firstResult) {
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
    if (wasReady) this.emit('disconnect', { code, reason, error });
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.emit('reconnecting', { attempt: this.attempt, delay, error });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
