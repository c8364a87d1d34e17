// History paging: a conversation's newest page when it is first shown, the page before the
// oldest message shown when the reader scrolls to the top (keeping their place), and the
// catch-up after a reconnect (exactly what was missed, between two cursors).

import { conn, pane, showLoadError, state, target, ui } from './page.js';
import { advance, behind, copyCursor, covers } from './state.js';
import { deliver, renderSidebar } from './conversations.js';

/** Messages per page when opening a conversation or scrolling back. */
const HISTORY_PAGE = 50;
/** Messages per page when catching up after a reconnect. */
const CATCH_UP_PAGE = 200;
/** Scrolling within this many pixels of the top loads older messages. */
const LOAD_OLDER_AT_PX = 120;

/** Fetches the newest page of a conversation (so the pane is not empty). */
export async function loadLatest(conv) {
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
export function fillPane(conv) {
  if (conv.key !== state.active || !conv.hasOlder) return;
  const s = ui.messages;
  if (s.scrollHeight <= s.clientHeight + LOAD_OLDER_AT_PX) loadOlder(conv);
}

/**
 * What a conversation missed while away: the messages the cursor `since` does not cover and
 * the node's cursor `upto` does, in stream order. Those `upto` does not cover come live.
 */
export async function catchUp(conv, since, upto) {
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

/** Scrolling to the top (or the button) loads older messages; the jump button goes down. */
export function wireHistory() {
  ui.messages.addEventListener('scroll', () => {
    if (ui.messages.scrollTop < LOAD_OLDER_AT_PX) loadOlder(state.activeConv);
  });
  ui.loadOlder.addEventListener('click', () => loadOlder(state.activeConv));
  ui.jump.addEventListener('click', () => {
    pane.scrollToBottom();
    ui.composer.focus();
  });
}
