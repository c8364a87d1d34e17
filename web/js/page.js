// What the page's modules share: the elements they draw into, the page's state (state.js), the
// views every part draws on (the message pane, the screen-reader announcer, the banner), the
// live connection, errors with hints, and what is remembered in localStorage. It imports no
// other module of the page's own, so the rest can all build on it.

import { ChatState } from './state.js';
import { Announcer, Banner, MessagePane, showError } from './views.js';

export const $ = (id) => document.getElementById(id);

export const ui = {
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

export const state = new ChatState();
export const pane = new MessagePane({
  scroller: ui.messages,
  list: ui.messageList,
  loadOlder: ui.loadOlder,
  jump: ui.jump,
  emptyState: ui.emptyState,
});
export const announcer = new Announcer($('announcer'));
export const banner = new Banner({ root: $('banner'), text: $('banner-text'), dismiss: $('banner-dismiss') });

/**
 * The live connection, or null when signed out. Exported as a live binding: the other modules
 * read it as `conn`, and only sign-in and sign-out change it, through setConn().
 */
export let conn = null;

export function setConn(c) {
  conn = c;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const HINTS = {
  name_in_use: 'Someone is using this name right now: pick another one.',
  auth_failed: 'This name is registered: give its password, or pick another name.',
  unreachable: 'Is the server running? Try again in a moment.',
  too_large: 'That is longer than the server allows.',
};

/** An error with a hint for the user, when there is one for its code. */
export function withHint(err) {
  return { code: err.code || 'error', message: err.message || String(err), hint: HINTS[err.code] };
}

export function store(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or storage full: remembering is a convenience only.
  }
}

export function load(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

export const roomsKey = () => `switchboard.rooms.${state.me.toLowerCase()}`;

/** Remembers the rooms joined, to rejoin them at the next sign-in with this name. */
export function rememberRooms() {
  store(roomsKey(), state.rooms().filter((c) => c.joined).map((c) => c.name));
}

/** A failed history load: a dropped connection is the banner's news (and is retried). */
export function showLoadError(err) {
  if (err.code !== 'disconnected') showError(ui.composerError, withHint(err));
}

/** Where a history or send request goes for a conversation. */
export function target(conv) {
  return conv.kind === 'room' ? { room: conv.name } : { with: conv.name };
}

export function isMobile() {
  return window.matchMedia('(max-width: 700px)').matches;
}
