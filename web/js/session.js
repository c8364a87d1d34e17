// The session: signing in and out, the connection's events (frames from the node, welcome,
// disconnect, reconnecting, a fatal refusal), the node the page is on in the top bar and the
// cluster learnt from it, and the resume after a reconnect (to the same node, or to another
// node of the cluster): rejoin every room and fetch exactly what was missed; see resume().
// The protocol client itself (Connection, ServerList) is protocol.js's.

import { Connection, ServerList, pageServer, pingFromQuery, serversFromQuery } from './protocol.js';
import {
  announcer,
  banner,
  conn,
  $,
  load,
  pane,
  roomsKey,
  setConn,
  state,
  store,
  ui,
  withHint,
} from './page.js';
import { copyCursor, roomKey, sameName } from './state.js';
import { applyJoined, applyTopic, deliver, joinRoom, renderActiveHeader, renderSidebar } from './conversations.js';
import { catchUp, loadLatest } from './history.js';
import { applyAway, refreshWho, scheduleWho, startWho, stopWho } from './online.js';
import { contactsPanel, onContactNews, refreshContacts, renderContacts, setContactFormOpen } from './contacts.js';
import { renderNodeLabel, showError } from './views.js';

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
  startWho();
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

function onDisconnect() {
  ui.connDot.classList.remove('online');
  stopWho();
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
  const c = new Connection({ servers, name, password: password || null, pingEveryMs: pingFromQuery() });
  c.addEventListener('welcome', (e) => onWelcome(e.detail));
  c.addEventListener('frame', (e) => onFrame(e.detail));
  c.addEventListener('disconnect', () => onDisconnect());
  c.addEventListener('reconnecting', (e) => onReconnecting(e.detail));
  c.addEventListener('fatal', (e) => onFatal(e.detail));
  setConn(c);
  try {
    await c.start();
    ui.signinPassword.value = '';
  } catch (err) {
    setConn(null);
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
  setConn(null);
  stopWho();
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

/** The sign-in form, and "Sign out". */
export function wireSession() {
  ui.signinForm.addEventListener('submit', signIn);
  ui.signout.addEventListener('click', () => {
    banner.setStatus(null);
    banner.setNotice(null);
    signOutLocally();
  });
}
