// What the page knows, with no DOM and no sockets: the conversations (rooms and direct
// conversations), their messages in stream order, unread counts, members and topics, and who
// is online. Messages are kept once each by `id`, so a message delivered twice (live and from
// history after a reconnect, or to the sender as well as its ack) is shown once.
//
// A stream is ordered by (lamport, origin), the same on every node of a cluster, and a
// conversation's progress is a cursor: for each origin node, the highest `oseq` seen.

/** Case-insensitive name comparison: names are unique regardless of ASCII case. */
export function sameName(a, b) {
  return typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
}

/** The stream key of a room: `#` and the lower-cased name (as the node computes it). */
export function roomKey(room) {
  return `#${room.replace(/^#/, '').toLowerCase()}`;
}

/** The stream key of the conversation between two names: `@lo:hi`, lower-cased and sorted. */
export function dmKey(a, b) {
  const [lo, hi] = [a.toLowerCase(), b.toLowerCase()].sort();
  return `@${lo}:${hi}`;
}

/** Stream order: by Lamport clock, then by origin node (compared as strings, not by locale). */
export function compareMessages(a, b) {
  if (a.lamport !== b.lamport) return a.lamport < b.lamport ? -1 : 1;
  if (a.origin === b.origin) return 0;
  return a.origin < b.origin ? -1 : 1;
}

/** The highest `oseq` a cursor has seen from an origin (own keys only: any node name is data). */
function seen(cursor, origin) {
  return cursor && Object.hasOwn(cursor, origin) ? cursor[origin] : undefined;
}

/** A cursor of the page's own: a copy without a prototype, so that every node name is a plain key. */
export function copyCursor(cursor) {
  const c = Object.create(null);
  for (const [origin, oseq] of Object.entries(cursor || {})) {
    if (Number.isFinite(oseq)) c[origin] = oseq;
  }
  return c;
}

/** Whether the cursor covers the message: it has seen the message's origin up to its `oseq`. */
export function covers(cursor, m) {
  const oseq = seen(cursor, m.origin);
  return oseq !== undefined && oseq >= m.oseq;
}

/** Moves a cursor (one made by `copyCursor`) past the message. */
export function advance(cursor, m) {
  cursor[m.origin] = Math.max(seen(cursor, m.origin) ?? 0, m.oseq);
}

/** Whether `other` covers some message that `cursor` does not. */
export function behind(cursor, other) {
  return Object.entries(other || {}).some(([origin, oseq]) => Number.isFinite(oseq) && (seen(cursor, origin) ?? 0) < oseq);
}

/** Whether a frame is a message this page can place: an id and a position in its stream. */
function isMessage(m) {
  return (
    Boolean(m) &&
    typeof m.id === 'string' &&
    typeof m.origin === 'string' &&
    Number.isFinite(m.lamport) &&
    Number.isFinite(m.oseq)
  );
}

/** One room or direct conversation as the user sees it. */
export class Conversation {
  constructor(kind, key, name) {
    /** 'room' or 'dm'. */
    this.kind = kind;
    /** The stream key: `#room` or `@a:b`. */
    this.key = key;
    /** The room's display name (without `#`) or the other person's name. */
    this.name = name;
    /** Messages in stream order (`compareMessages`), without duplicates. */
    this.messages = [];
    this.ids = new Set();
    /**
     * Where a catch-up resumes from: every message it covers is here or older than the oldest
     * shown (reached by paging back). Advanced by every message added, and by `cover`.
     */
    this.cursor = copyCursor();
    this.unread = 0;
    this.members = [];
    this.topic = null;
    /** Rooms: whether this session is a member (rejoined after reconnects). */
    this.joined = false;
    /** Whether the latest page of history was fetched: `cursor` is a valid resume point. */
    this.loaded = false;
    /** Whether older messages than the oldest shown remain on the node. */
    this.hasOlder = false;
    this.loadingOlder = false;
    /** Time of the newest message, to sort direct conversations by activity. */
    this.lastTs = 0;
  }

  get label() {
    return this.kind === 'room' ? `#${this.name}` : this.name;
  }

  /** The position of the oldest message shown, `{lamport, origin}`: where paging back starts. */
  get oldestPosition() {
    const m = this.messages[0];
    return m ? { lamport: m.lamport, origin: m.origin } : null;
  }

  /**
   * Merges a cursor from the node (`joined.cursor`, `welcome.dms[].cursor`) into this one.
   * Only sound when what it covers is history to this conversation (here, in the latest page
   * still to be fetched, or older) and what it does not cover will come live: a catch-up never
   * asks for what the cursor covers. So: at a first join, or before the first page is loaded.
   */
  cover(cursor) {
    for (const [origin, oseq] of Object.entries(cursor || {})) {
      if (Number.isFinite(oseq)) this.cursor[origin] = Math.max(seen(this.cursor, origin) ?? 0, oseq);
    }
  }

  /**
   * Adds messages, keeping order and dropping those already here. Returns the ones added and
   * whether they all went after every message already present (so a view can just append).
   */
  add(msgs) {
    const added = [];
    let appendOnly = true;
    for (const m of msgs) {
      if (!isMessage(m) || this.ids.has(m.id)) continue;
      this.ids.add(m.id);
      advance(this.cursor, m);
      const last = this.messages[this.messages.length - 1];
      if (!last || compareMessages(last, m) < 0) {
        this.messages.push(m);
      } else {
        // Arrived late (an older page, a catch-up, or from another node): into its place.
        appendOnly = false;
        let lo = 0;
        let hi = this.messages.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (compareMessages(this.messages[mid], m) < 0) lo = mid + 1;
          else hi = mid;
        }
        this.messages.splice(lo, 0, m);
      }
      this.lastTs = Math.max(this.lastTs, m.ts || 0);
      added.push(m);
    }
    return { added, appendOnly };
  }

  setMembers(names) {
    this.members = [...names].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
  }

  addMember(name) {
    if (!this.members.some((m) => sameName(m, name))) this.setMembers([...this.members, name]);
  }

  removeMember(name) {
    this.members = this.members.filter((m) => !sameName(m, name));
  }
}

/** Everything the page shows, for one signed-in user. */
export class ChatState {
  constructor() {
    this.reset();
  }

  reset() {
    this.me = '';
    this.registered = false;
    this.node = '';
    this.limits = null;
    /** Conversations by stream key. */
    this.convs = new Map();
    /** The key of the conversation shown, or null. */
    this.active = null;
    /** Names online on the node (from `who`). */
    this.online = [];
    /** Away messages of users online, by lowercased name (from `who` and `away` events). */
    this.away = new Map();
    /** The contact book (registered users). */
    this.contacts = new ContactBook();
  }

  get activeConv() {
    return this.active ? this.convs.get(this.active) || null : null;
  }

  room(name) {
    const key = roomKey(name);
    let conv = this.convs.get(key);
    if (!conv) {
      conv = new Conversation('room', key, name.replace(/^#/, ''));
      this.convs.set(key, conv);
    } else if (name) {
      // The node's spelling (from `joined`) wins over what the user typed.
      conv.name = name.replace(/^#/, '');
    }
    return conv;
  }

  dm(other) {
    const key = dmKey(this.me, other);
    let conv = this.convs.get(key);
    if (!conv) {
      conv = new Conversation('dm', key, other);
      this.convs.set(key, conv);
    }
    return conv;
  }

  /** The conversation a message belongs to, from this user's point of view (created if new). */
  convFor(m) {
    if (m.room) return this.room(m.room);
    const other = sameName(m.from, this.me) ? m.to || m.from : m.from;
    return this.dm(other);
  }

  /**
   * Adds messages to a conversation. With `countUnread`, messages from others count as unread
   * unless the conversation is the one shown (and the page is visible).
   */
  addMessages(conv, msgs, { countUnread = false, pageVisible = true } = {}) {
    const result = conv.add(msgs);
    if (countUnread) {
      const looking = conv.key === this.active && pageVisible;
      for (const m of result.added) {
        if (!looking && !sameName(m.from, this.me)) conv.unread += 1;
      }
    }
    return result;
  }

  remove(key) {
    this.convs.delete(key);
    if (this.active === key) this.active = null;
  }

  activate(key) {
    this.active = key;
    const conv = this.convs.get(key);
    if (conv) conv.unread = 0;
    return conv || null;
  }

  rooms() {
    return [...this.convs.values()]
      .filter((c) => c.kind === 'room')
      .sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
  }

  dms() {
    return [...this.convs.values()]
      .filter((c) => c.kind === 'dm')
      .sort((a, b) => b.lastTs - a.lastTs || a.name.localeCompare(b.name));
  }

  totalUnread() {
    let n = 0;
    for (const c of this.convs.values()) n += c.unread;
    return n;
  }
}

// ---------------------------------------------------------------------------------------------
// Contact books (registered users only): contact name -> phone number, as the node keeps them.
// The checks below are the node's (`validate_contact` in switchboard-proto), so that most
// mistakes are caught before a request is sent; the node checks again and its refusal is shown.

/** Longest contact name, in bytes of UTF-8. */
export const CONTACT_NAME_MAX_BYTES = 256;
/** Longest phone number, in bytes (the characters allowed are all ASCII). */
export const PHONE_MAX_CHARS = 20;

/** Unicode White_Space, the set of Rust's `char::is_whitespace` (not quite JavaScript's `\s`). */
const WHITE_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const TRIM_RE = new RegExp(`^[${WHITE_SPACE}]+|[${WHITE_SPACE}]+$`, 'gu');
/** Control characters: Unicode category Cc, as Rust's `char::is_control`. */
const CONTROL_RE = /\p{Cc}/u;
const PHONE_CHARS_RE = /^[0-9+ ()-]*$/;

/** `text` without white space at either end (Unicode White_Space, as the node trims). */
export function trimSpace(text) {
  return String(text ?? '').replace(TRIM_RE, '');
}

export function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}

/**
 * Why the node would refuse this contact, or null when it would take it: `{field, message}`,
 * `field` being `name` or `phone`. Without `phone` (a delete), only the name is checked.
 */
export function contactProblem(name, phone) {
  name = String(name ?? '');
  if (!trimSpace(name)) return { field: 'name', message: 'A contact needs a name.' };
  const bytes = utf8Length(name);
  if (bytes > CONTACT_NAME_MAX_BYTES) {
    return { field: 'name', message: `A contact name is at most ${CONTACT_NAME_MAX_BYTES} bytes (this one has ${bytes}).` };
  }
  if (CONTROL_RE.test(name)) return { field: 'name', message: 'A contact name cannot contain control characters.' };
  if (phone === undefined || phone === null) return null;
  phone = String(phone);
  if (!phone) return { field: 'phone', message: 'A contact needs a phone number.' };
  if (utf8Length(phone) > PHONE_MAX_CHARS) {
    return { field: 'phone', message: `A phone number is at most ${PHONE_MAX_CHARS} characters.` };
  }
  if (!PHONE_CHARS_RE.test(phone) || !/[0-9]/.test(phone)) {
    return { field: 'phone', message: 'A phone number has digits and only “+”, spaces, “-”, “(” and “)”.' };
  }
  return null;
}

const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });

/**
 * The order of the contact list: by name as people read it (case and accents aside, "2" before
 * "10"), then by code point, so that names differing only in case still have a fixed order.
 * (The node keys contacts by their exact name: "Bea" and "bea" are two contacts.)
 */
export function compareContactNames(a, b) {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * One user's contact book as the page knows it: filled from a `contacts` reply, changed by
 * `contact` frames (replies to this page's requests, and news of changes made elsewhere).
 * Each contact is `{name, phone, online}`.
 */
export class ContactBook {
  constructor() {
    /** Contacts by exact name. */
    this.byName = new Map();
    /** Whether a `contacts` reply has come since sign-in. */
    this.loaded = false;
  }

  get size() {
    return this.byName.size;
  }

  get(name) {
    return this.byName.get(name) || null;
  }

  /** The contacts, sorted by name. */
  list() {
    return [...this.byName.values()].sort((a, b) => compareContactNames(a.name, b.name));
  }

  /**
   * Takes the node's whole book (a `contacts` reply). Returns what changed since the page's
   * copy, as `[{name, change: 'added' | 'changed' | 'deleted', phone}]`, sorted by name.
   */
  replace(contacts) {
    const next = new Map();
    for (const c of Array.isArray(contacts) ? contacts : []) {
      if (c && typeof c.name === 'string' && typeof c.phone === 'string') {
        next.set(c.name, { name: c.name, phone: c.phone, online: Boolean(c.online) });
      }
    }
    const changes = [];
    for (const [name, c] of next) {
      const old = this.byName.get(name);
      if (!old) changes.push({ name, change: 'added', phone: c.phone });
      else if (old.phone !== c.phone) changes.push({ name, change: 'changed', phone: c.phone });
    }
    for (const name of this.byName.keys()) {
      if (!next.has(name)) changes.push({ name, change: 'deleted', phone: null });
    }
    this.byName = next;
    this.loaded = true;
    return changes.sort((a, b) => compareContactNames(a.name, b.name));
  }

  /**
   * Applies a `contact` frame: set (with `phone`) or deleted (without). `online` says whether a
   * user of that name is online, for a contact new to the page. Returns the change, or null
   * when the frame changed nothing.
   */
  apply({ name, phone }, online = false) {
    if (typeof name !== 'string') return null;
    const old = this.byName.get(name);
    if (typeof phone !== 'string') {
      if (!old) return null;
      this.byName.delete(name);
      return { name, change: 'deleted', phone: null };
    }
    if (old && old.phone === phone) return null;
    this.byName.set(name, { name, phone, online: old ? old.online : Boolean(online) });
    return { name, change: old ? 'changed' : 'added', phone };
  }

  /** Forgets everything (sign-out). */
  clear() {
    this.byName = new Map();
    this.loaded = false;
  }
}
