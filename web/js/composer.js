// The composer: a message typed into the conversation on screen (Enter sends, Shift+Enter
// adds a line; the node's size limit is checked first), and the slash commands for those who
// prefer typing: /join, /leave, /msg, /topic and /away.

import { announcer, conn, state, ui, withHint } from './page.js';
import { roomKey } from './state.js';
import { applyTopic, joinRoom, leaveRoom, openDm } from './conversations.js';
import { applyAway } from './online.js';
import { showError } from './views.js';

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

/** Sending, and the textarea's height and keys. */
export function wireComposer() {
  ui.composerForm.addEventListener('submit', submitComposer);
  ui.composer.addEventListener('input', autosize);
  ui.composer.addEventListener('keydown', (e) => {
    // Enter sends; Shift+Enter (or an input method composing text) inserts a new line.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      ui.composerForm.requestSubmit();
    }
  });
}
