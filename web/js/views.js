// DOM rendering. Everything from the network (names, texts, topics, reasons) goes into the page
// through textContent or as attribute values of elements built here, never as HTML, so a
// message that looks like markup stays text. Links are <a> elements made by linkify(), and only
// for http and https URLs.

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

function avatar(name, size = '') {
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

/** The banner at the top: the connection state and notices from the node. */
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

/**
 * The contacts panel of the sidebar: a registered user's book, sorted by name, each contact with
 * its number and whether a user of that name is online (then the name opens a conversation);
 * "Edit" puts the contact in the form below the list, "Delete" asks first, in the row itself.
 * The list is rebuilt on each change, and the focus is put back on the same control of the same
 * contact, so a refresh in the background never takes the keyboard's place away.
 *
 * `refs`: the section's elements; `actions`: `open(name)`, `edit(contact)`, `remove(name)` (a
 * promise; the row stays until it settles).
 */
export class ContactsPanel {
  constructor(refs, actions) {
    this.refs = refs;
    this.actions = actions;
    /** The name of the contact whose deletion is being confirmed, or null. */
    this.confirming = null;
    /** The name of the contact being deleted (request in flight), or null. */
    this.deleting = null;
    this.book = null;
    this.me = '';
    this.statusTimer = null;
  }

  /** Shows the book (`registered` true), or the notice that guests have no book. */
  render(book, { registered, me }) {
    const { section, guest, body, list, count } = this.refs;
    this.book = book;
    this.me = me || '';
    section.dataset.state = !registered ? 'guest' : book.loaded ? 'ready' : 'loading';
    guest.hidden = registered;
    body.hidden = !registered;
    if (!registered) {
      count.textContent = '';
      list.replaceChildren();
      return;
    }
    const contacts = book.list();
    count.textContent = contacts.length ? String(contacts.length) : '';
    if (this.confirming !== null && !book.get(this.confirming)) this.confirming = null;
    // Where the focus is, to put it back on the same control once the rows are rebuilt.
    const focusKey = list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    if (!book.loaded) {
      list.replaceChildren(el('li', { className: 'none muted', text: 'Loading…' }));
    } else if (!contacts.length) {
      list.replaceChildren(el('li', { className: 'none muted', text: 'No contacts yet.', attrs: { 'data-testid': 'contacts-empty' } }));
    } else {
      list.replaceChildren(...contacts.map((c) => this.row(c)));
    }
    if (focusKey) {
      const again = [...list.querySelectorAll('[data-focus-key]')].find((n) => n.dataset.focusKey === focusKey);
      if (again) again.focus();
      else this.refs.name.focus();
    }
  }

  /** Re-renders with the same book. */
  refresh() {
    if (this.book) this.render(this.book, { registered: true, me: this.me });
  }

  row(c) {
    const online = c.online && !sameName(c.name, this.me);
    const li = el('li', {
      className: `contact${online ? ' online' : ''}`,
      attrs: { 'data-testid': 'contact', 'data-name': c.name, 'data-online': String(Boolean(c.online)) },
    });
    // The name and whether they are online on the first line, the number under them.
    const state = c.online
      ? el('span', { className: 'contact-online', text: 'online', attrs: { 'data-testid': 'contact-online' } })
      : el('span', { className: 'visually-hidden', text: ' offline' });
    const who = el(
      'span',
      { className: 'contact-who' },
      el(
        'span',
        { className: 'contact-line' },
        el('span', { className: 'contact-name', text: c.name, attrs: { title: c.name, 'data-testid': 'contact-name' } }),
        state,
      ),
      el('span', { className: 'contact-phone', text: c.phone, attrs: { 'data-testid': 'contact-phone' } }),
    );
    let main;
    if (online) {
      main = el(
        'button',
        {
          className: 'contact-main',
          attrs: { type: 'button', title: `Message ${c.name}`, 'data-testid': 'contact-open', 'data-focus-key': `open:${c.name}` },
        },
        avatar(c.name, 'small'),
        who,
        el('span', { className: 'visually-hidden', text: ', send a direct message' }),
      );
      main.addEventListener('click', () => this.actions.open(c.name));
    } else {
      main = el('div', { className: 'contact-main' }, avatar(c.name, 'small'), who);
    }
    li.append(main);

    if (this.confirming === c.name) {
      li.append(this.confirmation(c));
      return li;
    }
    const edit = el(
      'button',
      {
        className: 'contact-action',
        attrs: { type: 'button', title: `Change the number of ${c.name}`, 'data-testid': 'contact-edit', 'data-focus-key': `edit:${c.name}` },
      },
      el('span', { text: '✎', attrs: { 'aria-hidden': 'true' } }),
      el('span', { className: 'visually-hidden', text: `Change the number of ${c.name}` }),
    );
    edit.addEventListener('click', () => this.actions.edit(c));
    const del = el(
      'button',
      {
        className: 'contact-action danger',
        attrs: { type: 'button', title: `Delete ${c.name}`, 'data-testid': 'contact-delete', 'data-focus-key': `delete:${c.name}` },
      },
      el('span', { text: '×', attrs: { 'aria-hidden': 'true' } }),
      el('span', { className: 'visually-hidden', text: `Delete ${c.name}` }),
    );
    del.addEventListener('click', () => this.askDelete(c.name));
    li.append(el('span', { className: 'contact-actions' }, edit, del));
    return li;
  }

  /** "Delete Bea? [Delete] [Cancel]" in place of the row's buttons; Escape cancels. */
  confirmation(c) {
    const busy = this.deleting === c.name;
    const question = el('span', { className: 'confirm-question', text: busy ? `Deleting ${c.name}…` : `Delete ${c.name}?` });
    const yes = el('button', {
      className: 'danger-button',
      text: 'Delete',
      attrs: { type: 'button', 'data-testid': 'contact-delete-confirm', 'data-focus-key': `confirm:${c.name}`, disabled: busy },
    });
    const no = el('button', {
      text: 'Cancel',
      attrs: { type: 'button', 'data-testid': 'contact-delete-cancel', 'data-focus-key': `cancel:${c.name}`, disabled: busy },
    });
    const box = el('div', { className: 'confirm', attrs: { role: 'group', 'aria-label': `Delete ${c.name}?`, 'data-testid': 'contact-confirm' } }, question, yes, no);
    yes.addEventListener('click', () => this.confirmDelete(c.name));
    no.addEventListener('click', () => this.cancelDelete(c.name));
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        // Not the drawer's Escape: only the question goes away.
        e.stopPropagation();
        this.cancelDelete(c.name);
      }
    });
    return box;
  }

  focus(key) {
    const node = [...this.refs.list.querySelectorAll('[data-focus-key]')].find((n) => n.dataset.focusKey === key);
    if (node) node.focus();
    return Boolean(node);
  }

  askDelete(name) {
    this.confirming = name;
    this.refresh();
    // The harmless answer has the focus: Enter twice does not delete by accident.
    this.focus(`cancel:${name}`);
  }

  cancelDelete(name) {
    this.confirming = null;
    this.refresh();
    this.focus(`delete:${name}`);
  }

  async confirmDelete(name) {
    // The row that takes the focus once this one is gone: the next one, else the previous one.
    const names = this.book ? this.book.list().map((c) => c.name) : [];
    const i = names.indexOf(name);
    const neighbour = names[i + 1] ?? names[i - 1] ?? null;
    this.deleting = name;
    this.refresh();
    try {
      await this.actions.remove(name);
    } catch {
      // The error is shown by whoever made the request; the row stays.
    } finally {
      this.deleting = null;
    }
    const gone = !this.book || !this.book.get(name);
    if (gone) this.confirming = null;
    this.refresh();
    if (!gone) this.focus(`cancel:${name}`);
    else if (!(neighbour && (this.focus(`delete:${neighbour}`) || this.focus(`open:${neighbour}`)))) this.refs.name.focus();
  }

  /** A short line about the latest change, read out by the status region, gone after a while. */
  say(text) {
    const { status } = this.refs;
    clearTimeout(this.statusTimer);
    status.textContent = text;
    this.statusTimer = setTimeout(() => {
      status.textContent = '';
    }, 15000);
  }

  clearStatus() {
    clearTimeout(this.statusTimer);
    this.refs.status.textContent = '';
  }
}
