// The web client's modules on their own: state.js and the server list of protocol.js in node
// (they have no DOM), and views.js's
// text handling inside the browser, imported from the node that serves it.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import {
  ChatState,
  ContactBook,
  Conversation,
  advance,
  behind,
  compareContactNames,
  compareMessages,
  contactProblem,
  copyCursor,
  covers,
  dmKey,
  roomKey,
  sameName,
  trimSpace,
} from '../../web/js/state.js';
import {
  PING_EVERY_MS,
  ServerList,
  clusterUrl,
  endpoint,
  normalizeServer,
  pingFromQuery,
  serversFromQuery,
} from '../../web/js/protocol.js';
import { Node, closePage, launchBrowser, openPage, test } from './lib.mjs';

/** Message `n` of #general: accepted by `origin` as its `oseq`, at Lamport time `lamport`. */
const msg = (n, { origin = 'web1', oseq = n, lamport = n, from = 'bob', ...extra } = {}) => ({
  id: `${origin}-${oseq}`,
  stream: '#general',
  from,
  room: 'general',
  text: `m${n}`,
  ts: 1_700_000_000_000 + n,
  lamport,
  origin,
  oseq,
  ...extra,
});
const texts = (msgs) => msgs.map((m) => m.text);
/** A cursor as a plain object, to compare with deepEqual. */
const plain = (cursor) => ({ ...cursor });

test('messages are kept once each, in stream order', () => {
  const c = new Conversation('room', '#general', 'general');
  assert.deepEqual(c.add([msg(3), msg(4)]).appendOnly, true);
  // Live 6 arrives before the catch-up brings 5; then 5 and 6 again (from history).
  assert.deepEqual(texts(c.add([msg(6)]).added), ['m6']);
  const r = c.add([msg(5), msg(6)]);
  assert.deepEqual(texts(r.added), ['m5']);
  assert.equal(r.appendOnly, false);
  // An older page.
  assert.deepEqual(texts(c.add([msg(1), msg(2), msg(3)]).added), ['m1', 'm2']);
  assert.deepEqual(texts(c.messages), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  assert.deepEqual(plain(c.cursor), { web1: 6 });
  assert.deepEqual(c.oldestPosition, { lamport: 1, origin: 'web1' });
  // The same id again, even in a batch of its own, is dropped; so is what cannot be placed.
  const again = c.add([msg(4), { ...msg(7), lamport: undefined }, { ...msg(8), id: undefined }, null]);
  assert.deepEqual(again.added, []);
  assert.equal(c.messages.length, 6);
});

test('messages from several nodes are ordered by (lamport, origin), late ones in place', () => {
  const c = new Conversation('room', '#general', 'general');
  // Two nodes: n1's messages 1-3, n2's 1-2, with Lamport times that interleave, and a tie at
  // Lamport 4 that the origin breaks ("n1" < "n2"). Arrival order is not stream order.
  const a1 = msg(1, { origin: 'n1', oseq: 1, lamport: 1 });
  const b1 = msg(2, { origin: 'n2', oseq: 1, lamport: 2 });
  const a2 = msg(3, { origin: 'n1', oseq: 2, lamport: 4 });
  const b2 = msg(4, { origin: 'n2', oseq: 2, lamport: 4 });
  const a3 = msg(5, { origin: 'n1', oseq: 3, lamport: 10 });
  assert.equal(c.add([a1, a2]).appendOnly, true);
  assert.equal(c.add([a3]).appendOnly, true);
  // n2's messages reach this node later: into their places, not at the end.
  const late = c.add([b2, b1]);
  assert.deepEqual(texts(late.added), ['m4', 'm2']);
  assert.equal(late.appendOnly, false);
  assert.deepEqual(texts(c.messages), ['m1', 'm2', 'm3', 'm4', 'm5']);
  assert.deepEqual(plain(c.cursor), { n1: 3, n2: 2 });
  // Delivered again from history (another batch, another order): nothing changes.
  assert.deepEqual(c.add([a3, b2, a1, b1, a2]).added, []);
  assert.deepEqual(texts(c.messages), ['m1', 'm2', 'm3', 'm4', 'm5']);
  // Lamport times compare as numbers (10 after 4 and 9), origins as strings.
  assert.ok(compareMessages(msg(0, { lamport: 9 }), msg(0, { lamport: 10 })) < 0);
  assert.ok(compareMessages(msg(0, { lamport: 4, origin: 'n10' }), msg(0, { lamport: 4, origin: 'n9' })) < 0);
  assert.equal(compareMessages(a2, { ...a2 }), 0);
  assert.deepEqual(c.oldestPosition, { lamport: 1, origin: 'n1' });
});

test('cursors: what they cover, advancing, merging the node\'s', () => {
  const cursor = copyCursor({ n1: 5 });
  assert.ok(covers(cursor, msg(5, { origin: 'n1' })));
  assert.ok(covers(cursor, msg(2, { origin: 'n1' })));
  assert.ok(!covers(cursor, msg(6, { origin: 'n1' })));
  assert.ok(!covers(cursor, msg(1, { origin: 'n2' })), 'an origin never seen covers nothing');
  advance(cursor, msg(1, { origin: 'n2' }));
  advance(cursor, msg(3, { origin: 'n1' }));
  assert.deepEqual(plain(cursor), { n1: 5, n2: 1 }, 'advancing never moves back');
  assert.ok(!behind(cursor, { n1: 5 }));
  assert.ok(!behind(cursor, {}));
  assert.ok(behind(cursor, { n1: 4, n2: 2 }));
  assert.ok(behind(cursor, { n3: 1 }));
  // Node names are data, whatever they are.
  const odd = copyCursor({ ['__proto__']: 2, constructor: 1 });
  assert.ok(covers(odd, msg(2, { origin: '__proto__' })) && !covers(odd, msg(3, { origin: '__proto__' })));
  assert.ok(!covers(copyCursor(), msg(1, { origin: 'constructor' })));
  assert.ok(!covers(JSON.parse('{"n1":1}'), msg(1, { origin: 'toString' })));
  advance(odd, msg(7, { origin: '__proto__' }));
  assert.equal(JSON.stringify(odd), '{"__proto__":7,"constructor":1}');

  // A conversation's cursor: the node's (at a first join) merged with what it holds.
  const c = new Conversation('room', '#general', 'general');
  c.cover({ n1: 40, n2: 3 });
  c.add([msg(41, { origin: 'n1', oseq: 41, lamport: 50 }), msg(1, { origin: 'n3', oseq: 9, lamport: 51 })]);
  c.cover({ n1: 12, n2: 'x' });
  assert.deepEqual(plain(c.cursor), { n1: 41, n2: 3, n3: 9 });
  assert.ok(!behind(c.cursor, { n1: 41, n2: 3 }));
  assert.ok(behind(c.cursor, { n2: 4 }));
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
  const hi = msg(1, { stream: '@alice:bob', room: undefined, from: 'bob', to: 'alice', text: 'hi' });
  const yo = msg(2, { stream: '@alice:bob', room: undefined, from: 'alice', to: 'bob', text: 'yo' });
  const dm = s.convFor(hi);
  assert.equal(dm.key, '@alice:bob');
  assert.equal(dm.name, 'bob');
  assert.equal(s.convFor(yo), dm);
  s.addMessages(dm, [hi], { countUnread: true });
  s.addMessages(dm, [yo], { countUnread: true });
  s.addMessages(dm, [hi, yo], { countUnread: true });
  assert.equal(dm.unread, 1, 'my own messages are not unread');
  s.addMessages(general, [msg(1)], { countUnread: true });
  assert.equal(general.unread, 0, 'the conversation on screen has nothing unread');
  s.addMessages(general, [msg(2)], { countUnread: true, pageVisible: false });
  assert.equal(general.unread, 1, 'unless the page is hidden');
  assert.equal(s.totalUnread(), 2);
  s.activate(dm.key);
  assert.equal(dm.unread, 0);
});

test('contacts are checked with the node\'s rules', () => {
  const field = (name, phone) => contactProblem(name, phone)?.field ?? null;
  // Names: 1-256 bytes of UTF-8, not only white space, no control characters.
  assert.equal(field('Bea', '333'), null);
  assert.equal(field('Juan Pablo', '+55 85 99999-9999'), null);
  assert.equal(field('', '1'), 'name');
  assert.equal(field(' \u3000 ', '1'), 'name', 'white space only (Unicode, as Rust trims)');
  assert.equal(field('\ufeff', '1'), null, 'U+FEFF is not white space to the node, whatever JavaScript says');
  assert.equal(field('x'.repeat(256), '1'), null);
  assert.equal(field('x'.repeat(257), '1'), 'name');
  assert.equal(field('é'.repeat(128), '1'), null, '256 bytes');
  assert.equal(field(`${'é'.repeat(128)}x`, '1'), 'name', '257 bytes, 129 characters');
  assert.equal(field('a\tb', '1'), 'name');
  assert.equal(field('a\u0085b', '1'), 'name', 'C1 controls too');
  assert.equal(field('a\u200bb', '1'), null, 'format characters are not controls');
  // Numbers: 1-20 of digits, +, space, -, (, ) with a digit.
  assert.equal(field('a', '+1 (800) 555-0000'), null);
  assert.equal(field('a', '1'.repeat(20)), null);
  assert.equal(field('a', '1'.repeat(21)), 'phone');
  assert.equal(field('a', ''), 'phone');
  assert.equal(field('a', '+-() '), 'phone', 'no digit');
  assert.equal(field('a', '12a'), 'phone');
  assert.equal(field('a', '１２３'), 'phone', 'ASCII digits only');
  assert.equal(field('a', '1.2'), 'phone');
  // A delete checks the name only.
  assert.equal(contactProblem('Bea'), null);
  assert.equal(trimSpace('  Bea\u00a0'), 'Bea');
  assert.equal(trimSpace('\u0085Bea\u2029'), 'Bea');
});

test('the contact book: the node\'s list, live changes, sorted by name', () => {
  const book = new ContactBook();
  assert.equal(book.loaded, false);
  assert.deepEqual(
    book.replace([
      { name: 'bea', phone: '2', online: false },
      { name: 'Ana', phone: '1', online: true },
      { name: 'Cy 10', phone: '3', online: false },
      { name: 'Cy 9', phone: '4', online: false },
    ]).map((c) => c.change),
    ['added', 'added', 'added', 'added'],
  );
  assert.equal(book.loaded, true);
  assert.deepEqual(book.list().map((c) => c.name), ['Ana', 'bea', 'Cy 9', 'Cy 10']);
  assert.equal(book.get('Ana').online, true);
  // Names are exact: "Bea" is not "bea".
  assert.deepEqual(book.apply({ name: 'Bea', phone: '5' }, true), { name: 'Bea', change: 'added', phone: '5' });
  assert.deepEqual(book.list().map((c) => c.name), ['Ana', 'Bea', 'bea', 'Cy 9', 'Cy 10']);
  assert.equal(book.get('Bea').online, true);
  assert.deepEqual(book.apply({ name: 'Ana', phone: '9' }), { name: 'Ana', change: 'changed', phone: '9' });
  assert.equal(book.get('Ana').online, true, 'a change keeps what the node said about who is online');
  assert.equal(book.apply({ name: 'Ana', phone: '9' }), null, 'the same again changes nothing');
  assert.deepEqual(book.apply({ name: 'bea' }), { name: 'bea', change: 'deleted', phone: null });
  assert.equal(book.apply({ name: 'bea' }), null);
  assert.equal(book.size, 4);
  // A refresh says what changed since.
  assert.deepEqual(book.replace([{ name: 'Ana', phone: '9' }, { name: 'Dee', phone: '7' }, { name: 'Cy 9', phone: '8' }]), [
    { name: 'Bea', change: 'deleted', phone: null },
    { name: 'Cy 9', change: 'changed', phone: '8' },
    { name: 'Cy 10', change: 'deleted', phone: null },
    { name: 'Dee', change: 'added', phone: '7' },
  ]);
  assert.ok(compareContactNames('b', 'B') !== 0, 'names differing in case have a fixed order');
  assert.equal(compareContactNames('b', 'B'), -compareContactNames('B', 'b'));
  // Signing out forgets the book.
  const s = new ChatState();
  s.contacts.replace([{ name: 'Ana', phone: '1' }]);
  s.reset();
  assert.equal(s.contacts.size, 0);
  assert.equal(s.contacts.loaded, false);
});

test('servers: addresses in one form, the ?servers= list, the cluster endpoint', () => {
  assert.equal(normalizeServer('ws://127.0.0.1:8080'), 'ws://127.0.0.1:8080');
  assert.equal(normalizeServer(' ws://Node-B.example:8081/v1/ws '), 'ws://node-b.example:8081');
  assert.equal(normalizeServer('127.0.0.1:8082'), 'ws://127.0.0.1:8082');
  assert.equal(normalizeServer('https://chat.example'), 'wss://chat.example');
  assert.equal(normalizeServer('wss://chat.example:443/'), 'wss://chat.example');
  for (const bad of ['', '  ', 'ftp://x', 'javascript:alert(1)', 'ws://', null]) assert.equal(normalizeServer(bad), null, String(bad));
  assert.deepEqual(serversFromQuery('?servers=ws://h1:1,h2:2,,ftp://no&x=1'), ['ws://h1:1', 'ws://h2:2']);
  assert.deepEqual(serversFromQuery('?x=1'), []);
  assert.equal(endpoint('ws://h:1'), 'ws://h:1/v1/ws');
  assert.equal(clusterUrl('ws://h:1'), 'http://h:1/v1/cluster');
  assert.equal(clusterUrl('wss://h'), 'https://h/v1/cluster');
});

test('?ping_ms= shortens the ping interval, and nothing else is taken', () => {
  assert.equal(pingFromQuery('?ping_ms=300'), 300);
  assert.equal(pingFromQuery('?servers=h:1&ping_ms=100'), 100);
  assert.equal(pingFromQuery(`?ping_ms=${PING_EVERY_MS}`), PING_EVERY_MS);
  for (const bad of ['', '?ping_ms=', '?ping_ms=99', '?ping_ms=0', `?ping_ms=${PING_EVERY_MS + 1}`, '?ping_ms=-5', '?ping_ms=3e2', '?ping_ms=abc']) {
    assert.equal(pingFromQuery(bad), null, bad);
  }
});

test('servers: learnt from /v1/cluster, named by welcome, tried round robin', async () => {
  // The page came from 127.0.0.1:8080; ?servers= added c by another name and a duplicate.
  const list = new ServerList(['ws://127.0.0.1:8080', 'ws://localhost:8082', 'ws://127.0.0.1:8080/v1/ws']);
  assert.equal(list.size, 2);
  assert.equal(list.current.url, 'ws://127.0.0.1:8080');
  assert.equal(ServerList.label(list.current), '127.0.0.1:8080');
  list.nameCurrent('a');
  assert.equal(ServerList.label(list.current), 'node a');
  // a's view: itself (by another address, which is not added again) and its peers.
  list.merge({
    node: 'a',
    url: 'ws://10.0.0.1:8080',
    clock: 7,
    peers: [
      { node: 'b', url: 'ws://10.0.0.2:8081', state: 'up' },
      { node: 'c', url: 'ws://10.0.0.3:8082', state: 'down' },
      { node: 'b', url: 'ws://10.0.0.2:8081', state: 'up' },
      { nonsense: true },
    ],
  });
  assert.deepEqual(list.entries.map((e) => [e.url, e.node]), [
    ['ws://127.0.0.1:8080', 'a'],
    ['ws://localhost:8082', null],
    ['ws://10.0.0.2:8081', 'b'],
    ['ws://10.0.0.3:8082', 'c'],
  ]);
  // Round robin; reaching c through the seeded address names it and drops c's other address.
  assert.equal(list.advance().url, 'ws://localhost:8082');
  list.nameCurrent('c');
  assert.deepEqual(list.entries.map((e) => e.node), ['a', 'c', 'b']);
  assert.equal(list.current.url, 'ws://localhost:8082');
  assert.equal(list.advance().node, 'b');
  assert.equal(list.advance().node, 'a');
  assert.equal(list.advance().node, 'c');

  // refresh asks the current node; a node without the endpoint (or a refused request) leaves
  // the list as it was.
  const asked = [];
  const answer = (body, ok = true) => async (url) => {
    asked.push(url);
    return { ok, json: async () => body };
  };
  assert.equal(await list.refresh(answer({ node: 'c', url: 'ws://x:1', peers: [{ node: 'd', url: 'ws://10.0.0.4:1' }] })), true);
  assert.deepEqual(asked, ['http://localhost:8082/v1/cluster']);
  assert.deepEqual(list.entries.map((e) => e.node), ['a', 'c', 'b', 'd']);
  assert.equal(await list.refresh(answer(null, false)), false);
  assert.equal(await list.refresh(async () => { throw new TypeError('Failed to fetch'); }), false);
  assert.equal(list.size, 4);
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

test('the pane shows late messages in their place, with days and groups in stream order', async () => {
  const page = await openPage(browser, node);
  const shown = await page.evaluate(async () => {
    const { MessagePane, dayLabel } = await import('/web/js/views.js');
    const { Conversation } = await import('/web/js/state.js');
    const make = (tag) => document.body.appendChild(document.createElement(tag));
    const scroller = make('div');
    scroller.style.cssText = 'height:200px;overflow:auto';
    const list = scroller.appendChild(document.createElement('div'));
    const pane = new MessagePane({ scroller, list, loadOlder: make('button'), jump: make('button'), emptyState: make('div') });
    pane.me = 'alice';
    const day1 = new Date(2020, 2, 9, 23, 50).getTime();
    const day2 = new Date(2020, 2, 10, 0, 10).getTime();
    const m = (text, from, lamport, origin, oseq, ts) =>
      ({ id: `${origin}-${oseq}`, stream: '#general', room: 'general', from, text, ts, lamport, origin, oseq });
    const conv = new Conversation('room', '#general', 'general');
    conv.loaded = true;
    const read = () =>
      [...list.children].map((e) =>
        e.dataset.testid === 'day-separator'
          ? `-- ${e.getAttribute('aria-label')}`
          : `${e.dataset.id} ${e.querySelector('[data-testid=message-text]').textContent}${e.classList.contains('grouped') ? ' (grouped)' : ''}`,
      );
    conv.add([m('one', 'bob', 1, 'n1', 1, day1), m('two', 'bob', 2, 'n1', 2, day1 + 1000), m('four', 'carol', 6, 'n1', 3, day2)]);
    pane.show(conv);
    const before = read();
    // Bob's message accepted by another node before midnight reaches this one last.
    pane.update(conv, conv.add([m('three', 'bob', 3, 'n2', 1, day1 + 2000)]));
    const after = read();
    // And an append after it.
    pane.update(conv, conv.add([m('five', 'carol', 7, 'n2', 2, day2 + 1000)]));
    return { before, after, last: read(), days: [dayLabel(day1), dayLabel(day2)] };
  });
  const [day1, day2] = shown.days;
  assert.notEqual(day1, day2);
  assert.deepEqual(shown.before, [`-- ${day1}`, 'n1-1 one', 'n1-2 two (grouped)', `-- ${day2}`, 'n1-3 four']);
  assert.deepEqual(shown.after, [`-- ${day1}`, 'n1-1 one', 'n1-2 two (grouped)', 'n2-1 three (grouped)', `-- ${day2}`, 'n1-3 four']);
  assert.deepEqual(shown.last, [...shown.after, 'n2-2 five (grouped)']);
  await closePage(page);
});
