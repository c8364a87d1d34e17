// Wiring: the sign-in form, the sidebar, the message pane and the composer, on top of the
// protocol client (protocol.js), the page's state (state.js) and the views (views.js).
// After a reconnect (to the same node, or to another node of the cluster) it rejoins every room
// and fetches exactly what was missed; see resume().

import { Connection, ServerList, pageServer, serversFromQuery } from './protocol.js';
import {
  ChatState,
  advance,
  behind,
  contactProblem,
  copyCursor,
  covers,
  dmKey,
  roomKey,
  sameName,
  trimSpace,
} from './state.js';
import {
  Announcer,
  Banner,
  ContactsPanel,
  MessagePane,
  renderConvList,
  renderHeader,
  renderNodeLabel,
  renderOnline,
  showError,
} from './views.js';

/** Messages per page when opening a conversation or scrolling back. */
const HISTORY_PAGE = 50;
/** Messages per page when catching up after a reconnect. */
const CATCH_UP_PAGE = 200;
/** Scrolling within this many pixels of the top loads older messages. */
const LOAD_OLDER_AT_PX = 120;
/** How often the list of who is online is refreshed, besides presence events. */
const WHO_EVERY_MS = 20000;

const $ = (id) => document.getElementById(id);

const ui = {
  signin: $('signin'),
  signinForm: $('signin-form'),
  signinName: $('signin-name'),
  signinPassword: $('signin-password'),
  signinError: $('signin-error'),
  signinSubmit: $('signin-submit'),
  app: $('app'),
  meName: $('me-name'),
  nodeLabel: $('node-label'),
  connDot: $('conn-dot'),
  signout: $('signout'),
  sidebar: $('sidebar'),
  sidebarToggle: $('sidebar-toggle'),
  scrim: $('scrim'),
  roomList: $('room-list'),
  dmList: $('dm-list'),
  joinForm: $('join-form'),
  joinInput: $('join-input'),
  dmForm: $('dm-form'),
  dmInput: $('dm-input'),
  sidebarError: $('sidebar-error'),
  onlineList: $('online-list'),
  onlineCount: $('online-count'),
  title: $('conv-title'),
  topic: $('conv-topic'),
  members: $('conv-members'),
  leave: $('leave-button'),
  messages: $('messages'),
  messageList: $('message-list'),
  loadOlder: $('load-older'),
  jump: $('jump-latest'),
  emptyState: $('empty-state'),
  joinGeneral: $('join-general'),
  composerForm: $('composer'),
  composer: $('composer-input'),
  composerLabel: $('composer-label'),
  send: $('composer-send'),
  composerError: $('composer-error'),
  contactAdd: $('contact-add'),
  contactClose: $('contact-close'),
  contactForm: $('contact-form'),
  contactName: $('contact-name'),
  contactPhone: $('contact-phone'),
  contactSubmit: $('contact-submit'),
  contactError: $('contact-error'),
};

const state = new ChatState();
const pane = new MessagePane({
  scroller: ui.messages,
  list: ui.messageList,
  loadOlder: ui.loadOlder,
  jump: ui.jump,
  emptyState: ui.emptyState,
});
const announcer = new Announcer($('announcer'));
const contactsPanel = new ContactsPanel(
  {
    section: $('contacts'),
    guest: $('contacts-guest'),
    body: $('contacts-body'),
    list: $('contact-list'),
    count: $('contacts-count'),
    status: $('contacts-status'),
    name: $('contact-name'),
  },
  {
    open: (name) => openDm(name).catch((err) => showError(ui.contactError, withHint(err))),
    edit: (contact) => editContact(contact),
    remove: (name) => deleteContact(name),
  },
);
const banner = new Banner({ root: $('banner'), text: $('banner-text'), dismiss: $('banner-dismiss') });

/** The live connection, or null when signed out. */
let conn = null;
let whoTimer = null;
let whoSoon = null;

// ---------------------------------------------------------------------------------------------
// Small helpers

const HINTS = {
  name_in_use: 'Someone is using this name right now: pick another one.',
  auth_failed: 'This name is registered: give its password, or pick another name.',
  unreachable: 'Is the server running? Try again in a moment.',
  too_large: 'That is longer than the server allows.',
};

/** An error with a hint for the user, when there is one for its code. */
function withHint(err) {
  return { code: err.code || 'error', message: err.message || String(err), hint: HINTS[err.code] };
}

function store(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or storage full: remembering is a convenience only.
  }
}

function load(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

const roomsKey = () => `switchboard.rooms.${state.me.toLowerCase()}`;

/** Remembers the rooms joined, to rejoin them at the next sign-in with this name. */
function rememberRooms() {
  store(roomsKey(), state.rooms().filter((c) => c.joined).map((c) => c.name));
}

/** A failed history load: a dropped connection is the banner's news (and is retried). */
function showLoadError(err) {
  if (err.code !== 'disconnected') showError(ui.composerError, withHint(err));
}

/** Where a history or send request goes for a conversation. */
function target(conv) {
  return conv.kind === 'room' ? { room: conv.name } : { with: conv.name };
}

function isMobile() {
  return window.matchMedia('(max-width: 700px)').matches;
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderSidebar() {
  renderConvList(ui.roomList, state.rooms(), state.active, openConv);
  renderConvList(ui.dmList, state.dms(), state.active, openConv);
  const n = state.totalUnread();
  document.title = n ? `(${n}) Switchboard` : 'Switchboard';
}

function renderPeople() {
  renderOnline(ui.onlineList, ui.onlineCount, state.online, state.me, (name) => openDm(name), state.away);
}

function renderContacts() {
  contactsPanel.render(state.contacts, { registered: state.registered, me: state.me });
  updateContactSubmit();
}

function renderActiveHeader() {
  renderHeader(
    {
      title: ui.title,
      topic: ui.topic,
      members: ui.members,
      leave: ui.leave,
      composerLabel: ui.composerLabel,
      composer: ui.composer,
      send: ui.send,
    },
    state.activeConv,
  );
}

/** The node the page is on, and the others it knows, in the top bar. */
function renderNode() {
  const servers = conn ? conn.servers : null;
  const current = servers && conn.ready ? servers.current : null;
  renderNodeLabel(ui.nodeLabel, {
    current: current ? ServerList.label(current) : null,
    url: current ? current.url : '',
    others: servers ? servers.entries.filter((e) => e !== current).map((e) => ServerList.label(e)) : [],
  });
}

/**
 * Learns the cluster from the node the page is on (`/v1/cluster`: the node and its peers), so
 * that the page can move to another node when this one goes. A node that cannot tell (an older
 * one, or a request the browser refuses) leaves the list as it is.
 */
async function refreshServers() {
  const c = conn;
  if (!c) return;
  await c.servers.refresh();
  if (conn === c) renderNode();
}

function setSidebarOpen(open) {
  document.body.classList.toggle('sidebar-open', open);
  ui.sidebarToggle.setAttribute('aria-expanded', String(open));
  ui.scrim.hidden = !open;
}

// ---------------------------------------------------------------------------------------------
// Conversations

/** Shows a conversation. */
function openConv(key, { focus = true } = {}) {
  const conv = state.activate(key);
  pane.me = state.me;
  pane.show(conv);
  renderActiveHeader();
  renderSidebar();
  showError(ui.composerError, null);
  if (isMobile()) setSidebarOpen(false);
  if (conv && focus) ui.composer.focus();
  if (conv && !conv.loaded && !conv.loading && (conv.kind === 'dm' || conv.joined)) {
    loadLatest(conv);
  } else if (conv) {
    fillPane(conv);
  }
}

/** Shows some other conversation, or the empty state, after the current one went away. */
function openSomething() {
  const next = state.rooms()[0] || state.dms()[0];
  if (next) openConv(next.key, { focus: false });
  else {
    state.active = null;
    pane.show(null);
    renderActiveHeader();
    renderSidebar();
  }
}

/** Applies a topic, from a change someone made or from the reply to our own change. */
function applyTopic(msg) {
  const conv = state.convs.get(roomKey(msg.room));
  if (!conv) return;
  conv.topic = msg.topic ?? null;
  if (conv.key === state.active) renderActiveHeader();
  if (msg.by) announcer.say(`${msg.by} set the topic of #${conv.name}: ${msg.topic || '(none)'}`);
}

/** Applies a `joined` reply: membership, members and topic. */
function applyJoined(j) {
  const conv = state.room(j.room);
  conv.joined = true;
  conv.setMembers(j.members || []);
  conv.topic = j.topic ?? null;
  if (conv.key === state.active) renderActiveHeader();
  return conv;
}

async function joinRoom(name, { activate = true } = {}) {
  const room = name.trim().replace(/^#/, '');
  const j = await conn.request({ type: 'join', room });
  const conv = applyJoined(j);
  // What the cursor covers is history (the latest page comes next); the rest will come live.
  conv.cover(j.cursor);
  rememberRooms();
  if (activate) openConv(conv.key);
  else renderSidebar();
  if (!conv.loaded && !conv.loading) await loadLatest(conv);
  return conv;
}

async function leaveRoom(conv) {
  await conn.request({ type: 'leave', room: conv.name });
  conv.joined = false;
  state.remove(conv.key);
  rememberRooms();
  announcer.say(`You left #${conv.name}`);
  openSomething();
}

/** Opens the conversation with a person, after checking that the name exists. */
async function openDm(name) {
  const who = name.trim().replace(/^@/, '');
  if (!who) return null;
  if (sameName(who, state.me)) {
    throw Object.assign(new Error('that is you: pick someone else'), { code: 'bad_request' });
  }
  const existing = state.convs.get(dmKey(state.me, who));
  if (existing) {
    openConv(existing.key);
    return existing;
  }
  // `whois` answers not_found for a name nobody holds: say so before the user types a word.
  const info = await conn.request({ type: 'whois', name: who });
  const conv = state.dm(info.name || who);
  openConv(conv.key);
  return conv;
}

/** Fetches the newest page of a conversation (so the pane is not empty). */
async function loadLatest(conv) {
  conv.loading = true;
  try {
    const h = await conn.request({ type: 'history', ...target(conv), limit: HISTORY_PAGE });
    const res = state.addMessages(conv, h.messages);
    conv.loaded = true;
    conv.hasOlder = h.more;
    if (conv.key === state.active) {
      if (res.added.length) pane.update(conv, res);
      else pane.render(conv);
      pane.setHasOlder(conv);
      fillPane(conv);
    }
    renderSidebar();
  } catch (err) {
    if (conv.key === state.active) showLoadError(err);
  } finally {
    conv.loading = false;
  }
}

/** Fetches the page before the oldest message shown, keeping the scroll position. */
async function loadOlder(conv) {
  if (!conv || !conv.hasOlder || conv.loadingOlder || !conv.messages.length || !conn || !conn.ready) return;
  conv.loadingOlder = true;
  ui.loadOlder.textContent = 'Loading older messages…';
  ui.messages.setAttribute('aria-busy', 'true');
  try {
    const h = await conn.request({
      type: 'history',
      ...target(conv),
      before: conv.oldestPosition,
      limit: HISTORY_PAGE,
    });
    const res = state.addMessages(conv, h.messages);
    conv.hasOlder = h.more;
    pane.update(conv, { ...res, older: true });
    pane.setHasOlder(conv);
  } catch (err) {
    if (conv.key === state.active) showLoadError(err);
  } finally {
    conv.loadingOlder = false;
    ui.loadOlder.textContent = 'Load older messages';
    ui.messages.removeAttribute('aria-busy');
  }
  fillPane(conv);
}

/** Loads older pages while the pane is too short to scroll (so scrolling up can load more). */
function fillPane(conv) {
  if (conv.key !== state.active || !conv.hasOlder) return;
  const s = ui.messages;
  if (s.scrollHeight <= s.clientHeight + LOAD_OLDER_AT_PX) loadOlder(conv);
}

/**
 * What a conversation missed while away: the messages the cursor `since` does not cover and
 * the node's cursor `upto` does, in stream order. Those `upto` does not cover come live.
 */
async function catchUp(conv, since, upto) {
  if (!behind(since, upto)) return;
  const cursor = copyCursor(since);
  const missed = [];
  try {
    for (;;) {
      const h = await conn.request({ type: 'history', ...target(conv), after: cursor, limit: CATCH_UP_PAGE });
      const fresh = h.messages.filter((m) => !covers(cursor, m));
      for (const m of fresh) advance(cursor, m);
      missed.push(...fresh.filter((m) => covers(upto, m)));
      // An empty page (or one with nothing new) ends it too, so a confused node cannot loop us.
      if (!fresh.length || !h.more) break;
    }
  } catch (err) {
    // Live messages may have moved the cursor past what is still missing: start over next time.
    conv.cursor = copyCursor(since);
    throw err;
  }
  deliver(conv, missed, { live: false });
}

/** Adds messages that arrived live or were caught up, and shows them. */
function deliver(conv, msgs, { live }) {
  const res = state.addMessages(conv, msgs, { countUnread: true, pageVisible: !document.hidden });
  if (!res.added.length) return;
  if (conv.key === state.active) pane.update(conv, res);
  if (live) {
    for (const m of res.added) {
      if (!sameName(m.from, state.me)) {
        const text = m.text.length > 140 ? `${m.text.slice(0, 140)}…` : m.text;
        announcer.say(`${m.from} in ${conv.label}: ${text}`);
      }
    }
  }
  renderSidebar();
}

// ---------------------------------------------------------------------------------------------
// Contacts (registered users): the book is fetched at sign-in, after every reconnect (it may
// have changed on another node meanwhile) and with each refresh of who is online (for the
// "online" marks); `contact` frames without a ref bring changes made by the user's other
// sessions (the console, another tab, another node).

/** What a change of the book was, in a short sentence for the status line. */
function describeContact({ name, change, phone }, { mine }) {
  if (mine) {
    if (change === 'added') return `Added ${name}: ${phone}.`;
    if (change === 'changed') return `Changed the number of ${name} to ${phone}.`;
    return `Deleted ${name}.`;
  }
  if (change === 'added') return `${name} was added from another session: ${phone}.`;
  if (change === 'changed') return `The number of ${name} was changed from another session: ${phone}.`;
  return `${name} was deleted from another session.`;
}

/** Changes found by a refresh (e.g. made on another node while the page was away). */
function describeRefresh(changes) {
  const words = { added: 'added', changed: 'changed', deleted: 'deleted' };
  const parts = changes.slice(0, 3).map((c) => `${c.name} ${words[c.change]}`);
  if (changes.length > 3) parts.push(`${changes.length - 3} more`);
  return `Contacts updated: ${parts.join(', ')}.`;
}

/** Fetches the whole book (registered users only: guests have none, and ask nothing). */
async function refreshContacts() {
  const c = conn;
  if (!c || !c.ready || !state.registered) return;
  const book = state.contacts;
  const first = !book.loaded;
  try {
    const reply = await c.request({ type: 'contacts' });
    if (conn !== c || state.contacts !== book) return;
    const changes = book.replace(reply.contacts);
    renderContacts();
    if (!first && changes.length) contactsPanel.say(describeRefresh(changes));
  } catch (err) {
    if (conn !== c) return;
    if (err.code === 'registration_required') {
      // The node says this is not a registered name: it knows best.
      state.registered = false;
      renderContacts();
    } else if (first && err.code !== 'disconnected') {
      showError(ui.contactError, withHint(err));
    }
  }
}

/** A contact frame without ref: a change made by another session of this user. */
function onContactNews(msg) {
  const online = state.online.some((n) => sameName(n, msg.name));
  const change = state.contacts.apply(msg, online);
  if (!change) return;
  renderContacts();
  contactsPanel.say(describeContact(change, { mine: false }));
  // Whether a new contact is online is the node's to say (the page's `who` may be old).
  if (change.change === 'added') scheduleWho();
}

/** The submit button says what it will do: add a contact, or change a number. */
function updateContactSubmit() {
  const known = state.contacts.get(trimSpace(ui.contactName.value));
  ui.contactSubmit.textContent = known ? 'Change number' : 'Add contact';
}

function clearContactError() {
  showError(ui.contactError, null);
  ui.contactName.removeAttribute('aria-invalid');
  ui.contactPhone.removeAttribute('aria-invalid');
}

/**
 * Shows why a contact was refused, by the page's check or by the node (code and message), and
 * marks the field at fault.
 */
function showContactError(err, field = null) {
  showError(ui.contactError, err);
  const input = field === 'name' ? ui.contactName : field === 'phone' ? ui.contactPhone : null;
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
}

const CONTACT_HINTS = {
  disconnected: 'The change may not have been saved: the list is fetched again once the page is back.',
  timeout: 'The change may not have been saved: the list is fetched again once the page is back.',
};

/** An error from the node about a contact, with a hint, and the field it is about. */
function contactError(err) {
  const e = withHint(err);
  if (CONTACT_HINTS[err.code]) e.hint = CONTACT_HINTS[err.code];
  let field = null;
  if (err.code === 'bad_request') field = /phone/i.test(err.message || '') ? 'phone' : 'name';
  return { e, field };
}

async function submitContact(event) {
  event.preventDefault();
  if (!conn || !state.registered) return;
  const name = trimSpace(ui.contactName.value);
  const phone = trimSpace(ui.contactPhone.value);
  clearContactError();
  const problem = contactProblem(name, phone);
  if (problem) {
    showContactError({ message: problem.message }, problem.field);
    return;
  }
  const before = state.contacts.get(name);
  ui.contactSubmit.disabled = true;
  ui.contactForm.setAttribute('aria-busy', 'true');
  try {
    const reply = await conn.request({ type: 'contact_set', name, phone });
    state.contacts.apply(reply);
    const change = before
      ? { name: reply.name, change: before.phone === reply.phone ? 'same' : 'changed', phone: reply.phone }
      : { name: reply.name, change: 'added', phone: reply.phone };
    // Cleared for the next contact, unless the user has started typing it already.
    if (trimSpace(ui.contactName.value) === name && trimSpace(ui.contactPhone.value) === phone) {
      ui.contactName.value = '';
      ui.contactPhone.value = '';
      ui.contactName.focus();
    }
    renderContacts();
    contactsPanel.say(
      change.change === 'same' ? `${change.name} already had the number ${change.phone}.` : describeContact(change, { mine: true }),
    );
    if (change.change === 'added') scheduleWho();
  } catch (err) {
    const { e, field } = contactError(err);
    showContactError(e, field);
  } finally {
    ui.contactSubmit.disabled = false;
    ui.contactForm.removeAttribute('aria-busy');
    updateContactSubmit();
  }
}

/**
 * Shows the form (the focus goes to its first field) or hides it (the focus goes back to the
 * button that opens it, when it was in the form).
 */
function setContactFormOpen(open, { focus = true } = {}) {
  const wasInside = ui.contactForm.contains(document.activeElement);
  ui.contactForm.hidden = !open;
  ui.contactAdd.hidden = open;
  if (open && focus) ui.contactName.focus();
  if (!open) {
    ui.contactName.value = '';
    ui.contactPhone.value = '';
    clearContactError();
    updateContactSubmit();
    if (wasInside && focus) ui.contactAdd.focus();
  }
}

/** "Edit": the contact goes into the form, with the focus on its number. */
function editContact(contact) {
  setContactFormOpen(true, { focus: false });
  clearContactError();
  ui.contactName.value = contact.name;
  ui.contactPhone.value = contact.phone;
  updateContactSubmit();
  ui.contactPhone.focus();
  ui.contactPhone.select();
}

/** Deletes a contact (after the panel's confirmation). Rejects when the node refused. */
async function deleteContact(name) {
  clearContactError();
  if (!conn) throw new Error('signed out');
  try {
    const reply = await conn.request({ type: 'contact_delete', name });
    state.contacts.apply({ name: reply.name });
    renderContacts();
    contactsPanel.say(describeContact({ name, change: 'deleted' }, { mine: true }));
  } catch (err) {
    if (err.code === 'not_found') {
      // Deleted elsewhere in the meantime: the page's copy was behind.
      state.contacts.apply({ name });
      renderContacts();
    }
    showContactError(contactError(err).e);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Events from the node

function onFrame(msg) {
  switch (msg.type) {
    case 'message': {
      const conv = state.convFor(msg);
      deliver(conv, [msg], { live: true });
      // Someone the online list does not show yet (signed in since the last refresh).
      if (!state.online.some((n) => sameName(n, msg.from))) scheduleWho();
      // A conversation someone else started: fetch what came before, for context.
      if (conv.kind === 'dm' && !conv.loaded && !conv.loading) loadLatest(conv);
      break;
    }
    case 'presence': {
      const conv = state.convs.get(roomKey(msg.room));
      if (conv) {
        if (msg.event === 'join') conv.addMember(msg.name);
        else conv.removeMember(msg.name);
        if (conv.key === state.active) renderActiveHeader();
      }
      scheduleWho();
      break;
    }
    case 'away':
      // Someone in one of our rooms (or we, on another device) went away or came back.
      applyAway(msg);
      break;
    case 'topic':
      applyTopic(msg);
      break;
    case 'contact':
      onContactNews(msg);
      break;
    case 'shutdown': {
      const text = `Server shutting down: ${msg.reason}`;
      banner.setNotice(text);
      announcer.say(text);
      break;
    }
    case 'undelivered': {
      // A gateway client (seed 002's relay) stopped answering before it got a message of ours.
      const text = `Not delivered to ${msg.to}: ${msg.reason}`;
      showError(ui.composerError, { code: 'undelivered', message: text });
      announcer.say(text);
      break;
    }
    case 'error':
      // Errors without a ref: rate limiting, or the reason the node is about to close.
      showError(ui.composerError, withHint(msg));
      break;
    default:
      break;
  }
}

function onWelcome({ welcome, resumed }) {
  const previousNode = state.node;
  state.me = welcome.name;
  state.registered = welcome.registered;
  state.node = welcome.node;
  state.limits = welcome.limits;
  pane.me = state.me;
  ui.meName.textContent = welcome.name;
  ui.meName.title = `${welcome.registered ? 'Registered' : 'Guest'} on node ${welcome.node}`;
  ui.connDot.classList.add('online');
  renderNode();
  refreshServers();
  clearInterval(whoTimer);
  whoTimer = setInterval(() => refreshWho(), WHO_EVERY_MS);
  if (resumed) {
    // The shutdown notice (if any) has served its purpose once we are back.
    const restarted = Boolean(banner.notice);
    const moved = previousNode && previousNode !== welcome.node;
    banner.setNotice(null);
    banner.setStatus(
      'ok',
      moved ? `Reconnected: now on node ${welcome.node}.` : restarted ? 'Reconnected: the server is back.' : 'Reconnected.',
    );
    resume(welcome);
  } else {
    firstSignIn(welcome);
  }
  // The book may have changed while the page was away (from another node, or the console).
  renderContacts();
  refreshContacts();
  refreshWho({ contacts: false });
}

function firstSignIn(welcome) {
  ui.signin.hidden = true;
  ui.app.hidden = false;
  store('switchboard.name', welcome.name);
  // A registered user sees their conversations again (loaded when opened).
  for (const dm of welcome.dms || []) state.dm(dm.with).cover(dm.cursor);
  renderSidebar();
  renderActiveHeader();
  pane.show(null);
  const rooms = load(roomsKey(), []);
  if (Array.isArray(rooms) && rooms.length) {
    rooms.forEach((room, i) => {
      joinRoom(String(room), { activate: i === 0 }).catch((err) => showError(ui.sidebarError, withHint(err)));
    });
  } else {
    ui.joinInput.focus();
  }
}

/**
 * After a reconnect: rejoin every room and fetch exactly what was missed. `joined.cursor` (J)
 * covers every message already in the room when the join took effect: what our cursor does not
 * cover and J does is fetched from history, and everything J does not cover arrives live.
 * Messages are kept once by `id`, so one seen both ways is shown once, in its place. Direct
 * conversations that moved on (`welcome.dms[].cursor`, for registered users) are caught up
 * from their cursors the same way.
 */
async function resume(welcome) {
  // Cursors are read now, before any frame of the new session is handled.
  const snapshot = (c) => ({ conv: c, since: copyCursor(c.cursor), loaded: c.loaded });
  const rooms = state.rooms().filter((c) => c.joined).map(snapshot);
  const dms = new Map(state.dms().map((c) => [c.key, snapshot(c)]));
  const active = state.activeConv;
  const failed = (err) => {
    if (err.code !== 'disconnected') showError(ui.sidebarError, withHint(err));
  };
  await Promise.all(
    rooms.map(async ({ conv, since, loaded }) => {
      try {
        const j = await conn.request({ type: 'join', room: conv.name });
        applyJoined(j);
        if (loaded) {
          await catchUp(conv, since, j.cursor);
        } else {
          conv.cover(j.cursor);
          await loadLatest(conv);
        }
      } catch (err) {
        failed(err);
      }
    }),
  );
  for (const info of welcome.dms || []) {
    const known = dms.get(info.stream);
    if (!known || !known.loaded) {
      // Not fetched yet (perhaps started while we were away): its latest page comes when it
      // is opened, and its new messages live.
      state.dm(info.with).cover(info.cursor);
      continue;
    }
    try {
      await catchUp(known.conv, known.since, info.cursor);
    } catch (err) {
      failed(err);
    }
  }
  // An open conversation that had not loaded yet (the connection dropped first).
  if (active && !active.loaded && !active.loading && (active.kind === 'dm' || active.joined)) loadLatest(active);
  renderSidebar();
}

/** Who is online; then the contacts, whose "online" marks the node computes the same way. */
async function refreshWho({ contacts = true } = {}) {
  if (!conn || !conn.ready) return;
  try {
    const who = await conn.request({ type: 'who' });
    state.online = who.users || [];
    state.away = new Map(Object.entries(who.away || {}).map(([n, m]) => [n.toLowerCase(), m]));
    renderPeople();
  } catch {
    // Shown again at the next refresh.
  }
  if (contacts) refreshContacts();
}

/** Presence events come in bursts (a node restart): refresh `who` once after them. */
function scheduleWho() {
  clearTimeout(whoSoon);
  whoSoon = setTimeout(() => refreshWho(), 300);
}

function onDisconnect() {
  ui.connDot.classList.remove('online');
  clearInterval(whoTimer);
  renderNode();
}

function onReconnecting({ attempt, delay, error, server }) {
  const why = error && error.code && error.code !== 'disconnected' ? ` (${error.code}: ${error.message})` : '';
  const when = delay === 0 ? 'now' : delay >= 1000 ? `in ${Math.round(delay / 1000)} s` : 'in a moment';
  const where = server ? ServerList.label(server) : 'the server';
  banner.setStatus('reconnecting', `Reconnecting… attempt ${attempt}: trying ${where} ${when}${why}`);
  $('banner').dataset.attempt = String(attempt);
  $('banner').dataset.target = server ? server.node || server.url : '';
}

function onFatal({ error }) {
  banner.setStatus(null);
  signOutLocally();
  showError(ui.signinError, withHint(error));
}

// ---------------------------------------------------------------------------------------------
// Sign-in and sign-out

async function signIn(event) {
  event.preventDefault();
  const name = ui.signinName.value.trim();
  const password = ui.signinPassword.value;
  showError(ui.signinError, null);
  ui.signinName.removeAttribute('aria-invalid');
  if (!name) {
    showError(ui.signinError, withHint({ code: 'invalid_name', message: 'enter a name' }));
    ui.signinName.focus();
    return;
  }
  ui.signinSubmit.disabled = true;
  ui.signinSubmit.textContent = 'Signing in…';
  state.reset();
  // The node that served the page first, then those of `?servers=`; the rest of the cluster is
  // learnt from /v1/cluster once signed in.
  const servers = new ServerList([pageServer(), ...serversFromQuery()]);
  const c = new Connection({ servers, name, password: password || null });
  c.addEventListener('welcome', (e) => onWelcome(e.detail));
  c.addEventListener('frame', (e) => onFrame(e.detail));
  c.addEventListener('disconnect', () => onDisconnect());
  c.addEventListener('reconnecting', (e) => onReconnecting(e.detail));
  c.addEventListener('fatal', (e) => onFatal(e.detail));
  conn = c;
  try {
    await c.start();
    ui.signinPassword.value = '';
  } catch (err) {
    conn = null;
    showError(ui.signinError, withHint(err));
    if (err.code === 'invalid_name' || err.code === 'name_in_use') ui.signinName.setAttribute('aria-invalid', 'true');
    ui.signinName.focus();
  } finally {
    ui.signinSubmit.disabled = false;
    ui.signinSubmit.textContent = 'Sign in';
  }
}

function signOutLocally() {
  if (conn) conn.stop();
  conn = null;
  clearInterval(whoTimer);
  state.reset();
  pane.show(null);
  renderSidebar();
  renderActiveHeader();
  // Nothing of this user's book stays in the page for the next one.
  setContactFormOpen(false, { focus: false });
  contactsPanel.clearStatus();
  renderContacts();
  ui.app.hidden = true;
  ui.signin.hidden = false;
  ui.connDot.classList.remove('online');
  renderNode();
  ui.signinName.focus();
}

// ---------------------------------------------------------------------------------------------
// Composer

/** An `away` frame (event or reply): who is away, with which message, or back. */
function applyAway(msg) {
  if (msg.message) state.away.set(msg.name.toLowerCase(), msg.message);
  else state.away.delete(msg.name.toLowerCase());
  renderPeople();
}

/** Slash commands, for those who prefer typing. Returns true when `text` was one. */
async function command(text) {
  const [cmd, ...rest] = text.slice(1).split(' ');
  const arg = rest.join(' ').trim();
  const conv = state.activeConv;
  switch (cmd.toLowerCase()) {
    case 'join':
    case 'j':
      if (!arg) throw Object.assign(new Error('usage: /join ROOM'), { code: 'usage' });
      await joinRoom(arg);
      return;
    case 'leave':
    case 'part': {
      const room = arg ? state.convs.get(roomKey(arg)) : conv && conv.kind === 'room' ? conv : null;
      if (!room) throw Object.assign(new Error('usage: /leave [ROOM]'), { code: 'usage' });
      await leaveRoom(room);
      return;
    }
    case 'msg':
    case 'm': {
      const [name, ...words] = arg.split(' ');
      if (!name) throw Object.assign(new Error('usage: /msg NAME [TEXT]'), { code: 'usage' });
      const dm = await openDm(name);
      const body = words.join(' ').trim();
      if (dm && body) await sendText(dm, body);
      return;
    }
    case 'topic':
      if (!conv || conv.kind !== 'room') throw Object.assign(new Error('/topic works in a room'), { code: 'usage' });
      // The setter gets the change as the reply; the other members as an event.
      applyTopic(await conn.request({ type: 'topic', room: conv.name, topic: arg }));
      return;
    case 'away': {
      // For all of this user's sessions; without a message, back.
      const reply = await conn.request({ type: 'away', message: arg || null });
      applyAway(reply);
      announcer.say(reply.message ? `You are away: ${reply.message}` : 'You are back');
      return;
    }
    default:
      throw Object.assign(new Error(`unknown command /${cmd}: try /join, /leave, /msg, /topic or /away`), { code: 'usage' });
  }
}

async function sendText(conv, text) {
  const max = state.limits ? state.limits.max_text_bytes : 16384;
  if (new TextEncoder().encode(text).length > max) {
    throw Object.assign(new Error(`a message is at most ${max} bytes`), { code: 'too_large' });
  }
  const msg = { type: 'send', text };
  if (conv.kind === 'room') msg.room = conv.name;
  else msg.to = conv.name;
  const ack = await conn.request(msg);
  if (ack.queued) {
    announcer.say(`${conv.name} is offline; your message will be delivered when they sign in.`);
    showError(ui.composerError, {
      code: 'queued',
      message: `${conv.name} is offline: your message will be delivered when they sign in.`,
    });
  }
}

function autosize() {
  ui.composer.style.height = 'auto';
  ui.composer.style.height = `${Math.min(ui.composer.scrollHeight, 200)}px`;
}

async function submitComposer(event) {
  event.preventDefault();
  const text = ui.composer.value;
  if (!text.trim() || !conn) return;
  showError(ui.composerError, null);
  ui.composer.value = '';
  autosize();
  try {
    if (text.startsWith('/') && !text.startsWith('//')) await command(text.trim());
    else {
      const conv = state.activeConv;
      if (!conv) throw Object.assign(new Error('join a room or open a conversation first'), { code: 'usage' });
      await sendText(conv, text.startsWith('//') ? text.slice(1) : text);
    }
  } catch (err) {
    showError(ui.composerError, withHint(err));
    // Give the text back so nothing typed is lost.
    if (!ui.composer.value) {
      ui.composer.value = text;
      autosize();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

ui.signinForm.addEventListener('submit', signIn);
ui.signout.addEventListener('click', () => {
  banner.setStatus(null);
  banner.setNotice(null);
  signOutLocally();
});

ui.joinForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = ui.joinInput.value.trim();
  if (!name || !conn) return;
  showError(ui.sidebarError, null);
  try {
    await joinRoom(name);
    ui.joinInput.value = '';
  } catch (err) {
    showError(ui.sidebarError, withHint(err));
  }
});

ui.dmForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = ui.dmInput.value.trim();
  if (!name || !conn) return;
  showError(ui.sidebarError, null);
  try {
    await openDm(name);
    ui.dmInput.value = '';
  } catch (err) {
    showError(ui.sidebarError, withHint(err));
  }
});

ui.joinGeneral.addEventListener('click', () => {
  if (conn) joinRoom('general').catch((err) => showError(ui.sidebarError, withHint(err)));
});

ui.leave.addEventListener('click', () => {
  const conv = state.activeConv;
  if (conv && conv.kind === 'room') leaveRoom(conv).catch((err) => showError(ui.composerError, withHint(err)));
});

ui.composerForm.addEventListener('submit', submitComposer);
ui.contactForm.addEventListener('submit', submitContact);
ui.contactAdd.addEventListener('click', () => setContactFormOpen(true));
ui.contactClose.addEventListener('click', () => setContactFormOpen(false));
ui.contactForm.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') {
    // Closes the form, not the phone drawer around it.
    e.stopPropagation();
    setContactFormOpen(false);
  }
});
ui.contactName.addEventListener('input', () => {
  ui.contactName.removeAttribute('aria-invalid');
  updateContactSubmit();
});
ui.contactPhone.addEventListener('input', () => ui.contactPhone.removeAttribute('aria-invalid'));
ui.composer.addEventListener('input', autosize);
ui.composer.addEventListener('keydown', (e) => {
  // Enter sends; Shift+Enter (or an input method composing text) inserts a new line.
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.composerForm.requestSubmit();
  }
});

ui.messages.addEventListener('scroll', () => {
  if (ui.messages.scrollTop < LOAD_OLDER_AT_PX) loadOlder(state.activeConv);
});
ui.loadOlder.addEventListener('click', () => loadOlder(state.activeConv));
ui.jump.addEventListener('click', () => {
  pane.scrollToBottom();
  ui.composer.focus();
});

ui.sidebarToggle.addEventListener('click', () => {
  const open = !document.body.classList.contains('sidebar-open');
  setSidebarOpen(open);
  if (open) (ui.sidebar.querySelector('button, input') || ui.sidebar).focus();
});
ui.scrim.addEventListener('click', () => setSidebarOpen(false));

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && document.body.classList.contains('sidebar-open')) {
    setSidebarOpen(false);
    ui.sidebarToggle.focus();
  }
  // Alt+Up / Alt+Down: previous / next conversation.
  if (e.altKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown') && !ui.app.hidden) {
    const all = [...state.rooms(), ...state.dms()];
    if (!all.length) return;
    const i = all.findIndex((c) => c.key === state.active);
    const next = all[(i + (e.key === 'ArrowUp' ? all.length - 1 : 1)) % all.length];
    e.preventDefault();
    openConv(next.key);
  }
});

document.addEventListener('visibilitychange', () => {
  const conv = state.activeConv;
  if (!document.hidden && conv && conv.unread) {
    conv.unread = 0;
    renderSidebar();
  }
});

ui.signinName.value = load('switchboard.name', '') || '';
ui.signinName.focus();
