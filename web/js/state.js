// What the page knows, with no DOM and no sockets: the conversations (rooms and direct
// conversations), their messages in sequence order, unread counts, members and topics, and who
// is online. Messages are keyed by (stream, seq), so a message delivered twice (live and from
// history after a reconnect, or to the sender as well as its ack) is kept once.

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

/** One room or direct conversation as the user sees it. */
export class Conversation {
  constructor(kind, key, name) {
    /** 'room' or 'dm'. */
    this.kind = kind;
    /** The stream key: `#room` or `@a:b`. */
    this.key = key;
    /** The room's display name (without `#`) or the other person's name. */
    this.name = name;
    /** Messages in ascending `seq` order, without duplicates. */
    this.messages = [];
    this.seqs = new Set();
    this.unread = 0;
    this.members = [];
    this.topic = null;
    /** Rooms: whether this session is a member (rejoined after reconnects). */
    this.joined = false;
    /** Whether the latest page of history was fetched: `lastSeq` is a valid resume cursor. */
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

  /** The highest sequence number seen: where a catch-up resumes from. */
  get lastSeq() {
    return this.messages.length ? this.messages[this.messages.length - 1].seq : 0;
  }

  /** The lowest sequence number shown: where paging back starts. */
  get oldestSeq() {
    return this.messages.length ? this.messages[0].seq : null;
  }

  /**
   * Adds messages, keeping order and dropping those already here. Returns the ones added and
   * whether they all went after every message already present (so a view can just append).
   */
  add(msgs) {
    const added = [];
    let appendOnly = true;
    for (const m of msgs) {
      if (!m || typeof m.seq !== 'number' || this.seqs.has(m.seq)) continue;
      this.seqs.add(m.seq);
      const last = this.messages[this.messages.length - 1];
      if (!last || last.seq < m.seq) {
        this.messages.push(m);
      } else {
        appendOnly = false;
        // Binary search for the insertion point.
        let lo = 0;
        let hi = this.messages.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (this.messages[mid].seq < m.seq) lo = mid + 1;
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
