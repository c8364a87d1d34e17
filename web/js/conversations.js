// Conversations: the sidebar's lists of rooms and direct conversations (with unread counts and
// the page title), the header of the one on screen, opening, joining and leaving them, topics,
// and delivering messages into them (counted as unread, read out to screen readers). Loading
// their history is history.js's. wireConversations() hooks up the sidebar's forms, the phone
// drawer and the keyboard shortcuts.

import { announcer, conn, isMobile, pane, rememberRooms, state, ui, withHint } from './page.js';
import { dmKey, roomKey, sameName } from './state.js';
import { fillPane, loadLatest } from './history.js';
import { renderConvList, renderHeader, showError } from './views.js';

export function renderSidebar() {
  renderConvList(ui.roomList, state.rooms(), state.active, openConv);
  renderConvList(ui.dmList, state.dms(), state.active, openConv);
  const n = state.totalUnread();
  document.title = n ? `(${n}) Switchboard` : 'Switchboard';
}

export function renderActiveHeader() {
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

export function setSidebarOpen(open) {
  document.body.classList.toggle('sidebar-open', open);
  ui.sidebarToggle.setAttribute('aria-expanded', String(open));
  ui.scrim.hidden = !open;
}

/** Shows a conversation. */
export function openConv(key, { focus = true } = {}) {
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
export function applyTopic(msg) {
  const conv = state.convs.get(roomKey(msg.room));
  if (!conv) return;
  conv.topic = msg.topic ?? null;
  if (conv.key === state.active) renderActiveHeader();
  if (msg.by) announcer.say(`${msg.by} set the topic of #${conv.name}: ${msg.topic || '(none)'}`);
}

/** Applies a `joined` reply: membership, members and topic. */
export function applyJoined(j) {
  const conv = state.room(j.room);
  conv.joined = true;
  conv.setMembers(j.members || []);
  conv.topic = j.topic ?? null;
  if (conv.key === state.active) renderActiveHeader();
  return conv;
}

export async function joinRoom(name, { activate = true } = {}) {
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

export async function leaveRoom(conv) {
  await conn.request({ type: 'leave', room: conv.name });
  conv.joined = false;
  state.remove(conv.key);
  rememberRooms();
  announcer.say(`You left #${conv.name}`);
  openSomething();
}

/** Opens the conversation with a person, after checking that the name exists. */
export async function openDm(name) {
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

/** Adds messages that arrived live or were caught up, and shows them. */
export function deliver(conv, msgs, { live }) {
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

/** A sidebar form that takes a name (a room to join, a person to write to): the name goes
 *  to `action`; the field empties on success, the error shows under the forms otherwise. */
function onNameSubmit(form, input, action) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = input.value.trim();
    if (!name || !conn) return;
    showError(ui.sidebarError, null);
    try {
      await action(name);
      input.value = '';
    } catch (err) {
      showError(ui.sidebarError, withHint(err));
    }
  });
}

/** The sidebar's forms, the leave button, the phone drawer, and switching with Alt+Up/Down. */
export function wireConversations() {
  onNameSubmit(ui.joinForm, ui.joinInput, joinRoom);
  onNameSubmit(ui.dmForm, ui.dmInput, openDm);

  ui.joinGeneral.addEventListener('click', () => {
    if (conn) joinRoom('general').catch((err) => showError(ui.sidebarError, withHint(err)));
  });

  ui.leave.addEventListener('click', () => {
    const conv = state.activeConv;
    if (conv && conv.kind === 'room') leaveRoom(conv).catch((err) => showError(ui.composerError, withHint(err)));
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

  // Back on the page: what was unread in the open conversation has been seen now.
  document.addEventListener('visibilitychange', () => {
    const conv = state.activeConv;
    if (!document.hidden && conv && conv.unread) {
      conv.unread = 0;
      renderSidebar();
    }
  });
}
