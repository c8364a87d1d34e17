// The web client's modules on their own: state.js in node (it has no DOM), and views.js's
// text handling inside the browser, imported from the node that serves it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ChatState, Conversation, dmKey, roomKey, sameName } from '../../web/js/state.js';
import { Node, closePage, launchBrowser, openPage } from './lib.mjs';

const msg = (seq, from = 'bob', extra = {}) => ({
  id: `web1-${seq}`,
  stream: '#general',
  seq,
  from,
  room: 'general',
  text: `m${seq}`,
  ts: 1_700_000_000_000 + seq,
  ...extra,
});

test('messages are kept once each, in sequence order', () => {
  const c = new Conversation('room', '#general', 'general');
  assert.deepEqual(c.add([msg(3), msg(4)]).appendOnly, true);
  // Live 6 arrives before the catch-up brings 5; then 5 and 6 again (from history).
  assert.deepEqual(c.add([msg(6)]).added.map((m) => m.seq), [6]);
  const r = c.add([msg(5), msg(6)]);
  assert.deepEqual(r.added.map((m) => m.seq), [5]);
  assert.equal(r.appendOnly, false);
  // An older page.
  assert.deepEqual(c.add([msg(1), msg(2), msg(3)]).added.map((m) => m.seq), [1, 2]);
  assert.deepEqual(c.messages.map((m) => m.seq), [1, 2, 3, 4, 5, 6]);
  assert.equal(c.lastSeq, 6);
  assert.equal(c.oldestSeq, 1);
});

test('keys, names and unread counts', () => {
  assert.equal(roomKey('#General'), '#general');
  assert.equal(dmKey('Bob', 'alice'), '@alice:bob');
  assert.equal(dmKey('alice', 'BOB'), dmKey('bob', 'Alice'));
  assert.ok(sameName('Alice', 'aLICE'));

  const s = new ChatState();
  s.me = 'alice';
  const general = s.room('general');
  s.activate(general.key);
  // A direct message from Bob lands in the conversation with Bob; my own reply too.
  const dm = s.convFor({ stream: '@alice:bob', seq: 1, from: 'bob', to: 'alice', text: 'hi', ts: 1 });
  assert.equal(dm.key, '@alice:bob');
  assert.equal(dm.name, 'bob');
  assert.equal(s.convFor({ stream: '@alice:bob', seq: 2, from: 'alice', to: 'bob', text: 'yo', ts: 2 }), dm);
  s.addMessages(dm, [{ stream: '@alice:bob', seq: 1, from: 'bob', to: 'alice', text: 'hi', ts: 1 }], { countUnread: true });
  s.addMessages(dm, [{ stream: '@alice:bob', seq: 2, from: 'alice', to: 'bob', text: 'yo', ts: 2 }], { countUnread: true });
  assert.equal(dm.unread, 1, 'my own messages are not unread');
  s.addMessages(general, [msg(1)], { countUnread: true });
  assert.equal(general.unread, 0, 'the conversation on screen has nothing unread');
  s.addMessages(general, [msg(2)], { countUnread: true, pageVisible: false });
  assert.equal(general.unread, 1, 'unless the page is hidden');
  assert.equal(s.totalUnread(), 2);
  s.activate(dm.key);
  assert.equal(dm.unread, 0);
});

let node;
let browser;

before(async () => {
  node = await Node.start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await node?.stop();
});

test('linkify makes links of http(s) URLs only, and text of everything else', async () => {
  const page = await openPage(browser, node);
  const cases = await page.evaluate(async () => {
    const { linkify, formatTime, dayLabel } = await import('/web/js/views.js');
    const run = (text) => {
      const div = document.createElement('div');
      linkify(div, text);
      return {
        text: div.textContent,
        html: div.innerHTML,
        links: [...div.querySelectorAll('a')].map((a) => [a.getAttribute('href'), a.textContent, a.rel, a.target]),
        elements: div.querySelectorAll('*').length,
      };
    };
    const now = new Date(2026, 2, 10, 12, 0).getTime();
    return {
      plain: run('no links here <b>at all</b>'),
      sentence: run('see https://example.com/a_b?x=1.'),
      paren: run('(https://en.wikipedia.org/wiki/Rust_(programming_language))'),
      two: run('http://a.example and HTTPS://B.example/x, done'),
      schemes: run('javascript:alert(1) data:text/html,<b>x</b> ftp://example.com file:///etc/passwd'),
      quote: run('"https://example.com/q"'),
      time: formatTime(new Date(2026, 0, 2, 7, 5).getTime()),
      today: dayLabel(now - 3600_000, now),
      yesterday: dayLabel(now - 24 * 3600_000, now),
      older: dayLabel(new Date(2025, 11, 24, 9).getTime(), now),
    };
  });
  assert.equal(cases.plain.text, 'no links here <b>at all</b>');
  assert.equal(cases.plain.elements, 0);
  assert.deepEqual(cases.sentence.links, [['https://example.com/a_b?x=1', 'https://example.com/a_b?x=1', 'noopener noreferrer', '_blank']]);
  assert.equal(cases.sentence.text, 'see https://example.com/a_b?x=1.');
  assert.deepEqual(cases.paren.links.map((l) => l[1]), ['https://en.wikipedia.org/wiki/Rust_(programming_language)']);
  assert.equal(cases.paren.text, '(https://en.wikipedia.org/wiki/Rust_(programming_language))');
  assert.deepEqual(cases.two.links.map((l) => l[0]), ['http://a.example/', 'https://b.example/x']);
  assert.deepEqual(cases.schemes.links, []);
  assert.equal(cases.schemes.elements, 0);
  assert.deepEqual(cases.quote.links.map((l) => l[1]), ['https://example.com/q']);
  assert.equal(cases.time, '07:05');
  assert.equal(cases.today, 'Today');
  assert.equal(cases.yesterday, 'Yesterday');
  assert.match(cases.older, /24/);
  assert.match(cases.older, /2025/);
  await closePage(page);
});
