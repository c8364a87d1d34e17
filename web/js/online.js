// The online list: who is online (from `who`, refreshed every 20 s and once after a burst of
// presence events) and who of them is away (from `away` frames). Each refresh also refreshes
// the contacts, whose "online" marks the node computes the same way.

import { conn, state, ui } from './page.js';
import { openDm } from './conversations.js';
import { refreshContacts } from './contacts.js';
import { renderOnline } from './views.js';

/** How often the list of who is online is refreshed, besides presence events. */
const WHO_EVERY_MS = 20000;

let whoTimer = null;
let whoSoon = null;

export function renderPeople() {
  renderOnline(ui.onlineList, ui.onlineCount, state.online, state.me, (name) => openDm(name), state.away);
}

/** Who is online; then the contacts, whose "online" marks the node computes the same way. */
export async function refreshWho({ contacts = true } = {}) {
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
export function scheduleWho() {
  clearTimeout(whoSoon);
  whoSoon = setTimeout(() => refreshWho(), 300);
}

/** Refreshes `who` every WHO_EVERY_MS from now on (from each `welcome`). */
export function startWho() {
  clearInterval(whoTimer);
  whoTimer = setInterval(() => refreshWho(), WHO_EVERY_MS);
}

/** No more periodic refreshes (disconnected, or signed out). */
export function stopWho() {
  clearInterval(whoTimer);
}

/** An `away` frame (event or reply): who is away, with which message, or back. */
export function applyAway(msg) {
  if (msg.message) state.away.set(msg.name.toLowerCase(), msg.message);
  else state.away.delete(msg.name.toLowerCase());
  renderPeople();
}
