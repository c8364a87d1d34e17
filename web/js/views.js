// DOM rendering. Everything from the network (names, texts, topics, reasons) goes into the page
// through textContent or as attribute values of elements built here, never as HTML, so a
// message that looks like markup stays text. Links are <a> elements made by linkify(), and only
// for http and https URLs. The contacts panel is contacts-view.js.

import { sameName } from './state.js';

/** Two messages from the same sender this close together are shown as one group. */
const GROUP_WITHIN_MS = 5 * 60 * 1000;

/** Distance from the bottom (px) within which the pane follows new messages. */
const STICK_TO_BOTTOM_PX = 80;

/** Creates an element with a class, text and attributes. */
export function el(tag, { className, text, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

// A URL starts with http:// or https:// and runs to the next space; closing punctuation at its
// end is usually the sentence's, not the URL's.
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'")\]}>]+$/;

/** Appends `text` to `parent` as text nodes, with http(s) URLs as links opening a new tab. */
export function linkify(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let raw = match[0];
    const trail = raw.match(TRAILING);
    if (trail) {
      // Keep a closing bracket that has its opening one inside the URL (Wikipedia links).
      let cut = trail[0];
      if (cut.startsWith(')') && raw.slice(0, -cut.length).includes('(')) cut = cut.slice(1);
      raw = raw.slice(0, raw.length - cut.length);
    }
    if (!raw) continue;
    let url;
    try {
      url = new URL(raw);
    } catch {
      continue;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    parent.append(
      el('a', {
        text: raw,
        attrs: { href: url.href, target: '_blank', rel: 'noopener noreferrer' },
      }),
    );
    last = match.index + raw.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

const pad = (n) => String(n).padStart(2, '0');

/** HH:MM in local time. */
export function formatTime(ts) {
  const d = new Date(ts);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** "Today", "Yesterday", or the date. */
export function dayLabel(ts, now = Date.now()) {
  if (dayKey(ts) === dayKey(now)) return 'Today';
  const y = new Date(now);
  y.setDate(y.getDate() - 1);
  if (dayKey(ts) === dayKey(y.getTime())) return 'Yesterday';
  const d = new Date(ts);
  const opts = { weekday: 'long', day: 'numeric', month: 'long' };
  if (d.getFullYear() !== new Date(now).getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString(undefined, opts);
}

/** A stable colour for a name, so people are easy to tell apart. */
export function nameHue(name) {
  let h = 0;
  for (const c of name.toLowerCase()) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

/** A round badge with the initial of a name, in its colour. */
export function avatar(name, size = '') {
  const node = el('span', {
    className: `avatar ${size}`.trim(),
    text: (name[0] || '?').toUpperCase(),
    attrs: { 'aria-hidden': 'true' },
  });
  node.style.setProperty('--hue', String(nameHue(name)));
  return node;
}

/** Shows an error as its code and message, plainly; `null` hides the element. */
export function showError(node, err) {
  node.replaceChildren();
  if (!err) {
    node.hidden = true;
    return;
  }
  if (err.code) node.append(el('code', { className: 'code', text: err.code }), ' ');
  node.append(document.createTextNode(err.message || String(err)));
  if (err.hint) node.append(el('span', { className: 'hint-line', text: err.hint }));
  node.hidden = false;
}

/** The rooms or direct conversations of the sidebar, with unread counts. */
export function renderConvList(ul, convs, activeKey, onOpen) {
  ul.replaceChildren();
  if (!convs.length) {
    ul.append(el('li', { className: 'none muted', text: 'None yet' }));
    return;
  }
  for (const conv of convs) {
    const active = conv.key === activeKey;
    const button = el('button', {
      className: 'conv',
      attrs: {
        type: 'button',
        'data-testid': 'conv',
        'data-conv': conv.key,
        'aria-current': active ? 'page' : null,
      },
    });
    if (conv.kind === 'room') {
      button.append(el('span', { className: 'hash', text: '#', attrs: { 'aria-hidden': 'true' } }));
      button.append(el('span', { className: 'visually-hidden', text: 'room ' }));
    } else {
      button.append(avatar(conv.name, 'small'));
    }
    button.append(el('span', { className: 'conv-name', text: conv.name }));
    if (conv.unread > 0) {
      button.append(
        el('span', {
          className: 'badge',
          text: conv.unread > 99 ? '99+' : conv.unread,
          attrs: { 'aria-hidden': 'true', 'data-testid': 'unread' },
        }),
        el('span', { className: 'visually-hidden', text: `, ${conv.unread} unread` }),
      );
    }
    button.addEventListener('click', () => onOpen(conv.key));
    ul.append(el('li', {}, button));
  }
}

/** "away", muted, with the away message as its tooltip and, for screen readers, as text. */
function awayLabel(message) {
  return el(
    'span',
    { className: 'muted away', attrs: { title: message, 'data-testid': 'away' } },
    ' away',
    el('span', { className: 'visually-hidden', text: `: ${message}` }),
  );
}

/**
 * Who is online: everyone but me is a button that opens a conversation. `away` maps lowercased
 * names to away messages.
 */
export function renderOnline(ul, countNode, names, me, onOpen, away = new Map()) {
  ul.replaceChildren();
  countNode.textContent = names.length ? String(names.length) : '';
  for (const name of names) {
    const li = el('li');
    const message = away.get(name.toLowerCase());
    const label = message === undefined ? null : awayLabel(message);
    if (sameName(name, me)) {
      li.append(
        el('span', { className: 'person me-person' }, avatar(name, 'small'), el('span', { text: name }), el('span', { className: 'muted', text: ' (you)' }), label),
      );
    } else {
      const b = el(
        'button',
        {
          className: 'person',
          attrs: { type: 'button', 'data-testid': 'person', 'data-name': name, title: `Message ${name}` },
        },
        avatar(name, 'small'),
        el('span', { text: name }),
        label,
        el('span', { className: 'visually-hidden', text: ' (send a direct message)' }),
      );
      b.addEventListener('click', () => onOpen(name));
      li.append(b);
    }
    ul.append(li);
  }
}

/** The conversation header: title, topic (rooms), members, and the leave button. */
export function renderHeader(refs, conv) {
  const { title, topic, members, leave, composerLabel, composer, send } = refs;
  if (!conv) {
    title.textContent = 'Welcome';
    topic.textContent = '';
    topic.hidden = true;
    members.textContent = '';
    members.removeAttribute('title');
    leave.hidden = true;
    composerLabel.textContent = 'Message';
    composer.disabled = true;
    send.disabled = true;
    return;
  }
  title.textContent = conv.label;
  if (conv.kind === 'room') {
    topic.textContent = conv.topic || 'No topic set';
    topic.classList.toggle('muted', !conv.topic);
    topic.hidden = false;
    const n = conv.members.length;
    members.textContent = `${n} ${n === 1 ? 'member' : 'members'}`;
    members.title = conv.members.join(', ');
    leave.hidden = !conv.joined;
  } else {
    topic.textContent = 'Direct conversation';
    topic.classList.add('muted');
    topic.hidden = false;
    members.textContent = '';
    members.removeAttribute('title');
    leave.hidden = true;
  }
  composerLabel.textContent = `Message ${conv.label}`;
  composer.placeholder = `Message ${conv.label}`;
  composer.disabled = false;
  send.disabled = false;
}

/** The scrolling list of one conversation's messages. */
export class MessagePane {
  constructor({ scroller, list, loadOlder, jump, emptyState }) {
    this.scroller = scroller;
    this.list = list;
    this.loadOlder = loadOlder;
    this.jump = jump;
    this.emptyState = emptyState;
    this.convKey = null;
    this.me = '';
    scroller.addEventListener('scroll', () => {
      if (this.isNearBottom()) this.jump.hidden = true;
    });
  }

  isNearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < STICK_TO_BOTTOM_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.jump.hidden = true;
  }

  /** Shows a conversation from scratch, scrolled to its newest message. */
  show(conv) {
    this.convKey = conv ? conv.key : null;
    this.emptyState.hidden = Boolean(conv);
    this.render(conv);
    this.scrollToBottom();
  }

  /**
   * Shows what changed in the conversation on screen. `older`: messages were added at the top
   * (keep what the user looks at in place); otherwise the pane follows new messages when it
   * was at the bottom, and offers a jump button when it was not.
   */
  update(conv, { added, appendOnly, older = false }) {
    if (!conv || conv.key !== this.convKey || !added.length) return;
    const s = this.scroller;
    const wasAtBottom = this.isNearBottom();
    const fromBottom = s.scrollHeight - s.scrollTop;
    if (appendOnly && !older && this.list.querySelector('.msg')) {
      const firstIdx = conv.messages.length - added.length;
      this.list.append(this.build(added, conv.messages[firstIdx - 1] || null));
    } else {
      this.render(conv);
    }
    if (older) {
      s.scrollTop = s.scrollHeight - fromBottom;
    } else if (wasAtBottom) {
      this.scrollToBottom();
    } else if (added.some((m) => !sameName(m.from, this.me))) {
      this.jump.hidden = false;
    }
  }

  /** Whether older history remains; shows the button that loads it. */
  setHasOlder(conv) {
    this.loadOlder.hidden = !(conv && conv.key === this.convKey && conv.hasOlder);
  }

  render(conv) {
    if (!conv) {
      this.list.replaceChildren();
      this.loadOlder.hidden = true;
      return;
    }
    if (!conv.messages.length) {
      const empty = conv.loaded ? 'No messages yet. Say hello!' : 'Loading…';
      this.list.replaceChildren(el('p', { className: 'no-messages muted', text: empty }));
    } else {
      this.list.replaceChildren(this.build(conv.messages, null));
    }
    this.setHasOlder(conv);
  }

  /** Message elements for `msgs`, grouped after `prev` (the message shown just before). */
  build(msgs, prev) {
    const frag = document.createDocumentFragment();
    for (const m of msgs) {
      const newDay = !prev || dayKey(prev.ts) !== dayKey(m.ts);
      if (newDay) {
        const label = dayLabel(m.ts);
        frag.append(
          el('div', { className: 'day-separator', attrs: { role: 'separator', 'aria-label': label, 'data-testid': 'day-separator' } },
            el('span', { text: label })),
        );
      }
      const grouped = !newDay && prev && sameName(prev.from, m.from) && m.ts - prev.ts < GROUP_WITHIN_MS;
      frag.append(this.message(m, grouped));
      prev = m;
    }
    return frag;
  }

  message(m, grouped) {
    const mine = sameName(m.from, this.me);
    const time = el('time', {
      text: formatTime(m.ts),
      attrs: { datetime: new Date(m.ts).toISOString(), title: new Date(m.ts).toLocaleString(), 'data-testid': 'message-time' },
    });
    const meta = el(
      'div',
      { className: grouped ? 'meta visually-hidden' : 'meta' },
      el('span', { className: 'from', text: m.from, attrs: { 'data-testid': 'message-from' } }),
      document.createTextNode(' '),
      time,
    );
    const text = el('div', { className: 'text', attrs: { 'data-testid': 'message-text' } });
    linkify(text, m.text);
    const gutter = grouped
      ? el('span', { className: 'gutter-time', text: formatTime(m.ts), attrs: { 'aria-hidden': 'true' } })
      : avatar(m.from);
    if (!grouped) gutter.style.setProperty('--hue', String(nameHue(m.from)));
    return el(
      'article',
      {
        className: `msg${grouped ? ' grouped' : ''}${mine ? ' mine' : ''}`,
        attrs: { 'data-testid': 'message', 'data-stream': m.stream, 'data-id': m.id, 'data-from': m.from },
      },
      gutter,
      el('div', { className: 'body' }, meta, text),
    );
  }
}

/** Reads new messages out to screen readers, one short line each. */
export class Announcer {
  constructor(node) {
    this.node = node;
  }

  say(text) {
    this.node.append(el('p', { text }));
    while (this.node.childElementCount > 5) this.node.firstElementChild.remove();
  }
}

/**
 * The node the page is on, in the top bar ("node b"), with the other known nodes in its title.
 * `current` and `others` are labels ("node a", or host:port while a node's name is unknown).
 */
export function renderNodeLabel(label, { current, url, others }) {
  label.hidden = !current;
  label.textContent = current || '';
  const also = others.length ? ` Also known: ${others.join(', ')}.` : '';
  label.title = current ? `Connected to ${current} (${url}).${also}` : '';
  label.dataset.servers = [current, ...others].filter(Boolean).join(',');
}

/** The banner at the top: the connection state and notices from the node. */
export class Banner {
  constructor({ root, text, dismiss }) {
    this.root = root;
    this.text = text;
    this.notice = null;
    this.status = null;
    this.timer = null;
    dismiss.addEventListener('click', () => {
      this.notice = null;
      if (this.status && this.status.kind === 'ok') this.status = null;
      this.paint();
    });
  }

  /** A notice from the node (e.g. shutdown); it stays until dismissed or replaced. */
  setNotice(message) {
    this.notice = message;
    this.paint();
  }

  /** The connection state: `reconnecting`, `ok` (shown briefly), or null. */
  setStatus(kind, message) {
    clearTimeout(this.timer);
    this.status = kind ? { kind, message } : null;
    if (kind === 'ok') {
      this.timer = setTimeout(() => {
        this.status = null;
        this.notice = null;
        this.paint();
      }, 4000);
    }
    this.paint();
  }

  paint() {
    const parts = [];
    if (this.notice) parts.push(el('strong', { className: 'notice', text: this.notice, attrs: { 'data-testid': 'banner-notice' } }));
    if (this.status) {
      parts.push(el('span', { className: 'status', text: this.status.message, attrs: { 'data-testid': 'banner-status' } }));
    }
    this.text.replaceChildren(...parts);
    this.root.hidden = parts.length === 0;
    this.root.dataset.state = this.status ? this.status.kind : this.notice ? 'notice' : '';
  }
}
