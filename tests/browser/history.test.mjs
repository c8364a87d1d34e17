// History: joining shows the latest page at once; scrolling up loads older pages, keeping the
// place of what the user was reading, until the first message, with nothing shown twice: in a
// room and in a direct conversation.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import {
  ConsoleClient,
  Node,
  assertOnceInOrder,
  closePage,
  joinRoom,
  launchBrowser,
  nodeHistory,
  paneMessages,
  screenshot,
  signIn,
  test,
  until,
  visibleText,
  waitForMessage,
} from './lib.mjs';

const TOTAL = 120;

let node;
let browser;
let bob;

before(async () => {
  node = await Node.start();
  browser = await launchBrowser();
});

after(async () => {
  await bob?.close();
  await browser?.close();
  await node?.stop();
});

/**
 * Scrolls the pane to the top until the message `firstText` is loaded, checking after each page
 * that the message that was at the top is still in view (the pane kept the reader's place).
 * Returns how many pages were loaded.
 */
async function scrollToFirst(page, firstText) {
  let pages = 0;
  for (;;) {
    const before = await paneMessages(page);
    if (before[0].text === firstText) return pages;
    const topId = before[0].id;
    await page.$eval('[data-testid=messages]', (s) => {
      s.scrollTop = 0;
    });
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=message-list] [data-testid=message]').length > n, before.length);
    pages += 1;
    const inView = await page.$eval(`[data-testid=message-list] [data-id="${topId}"]`, (m) => {
      const s = document.querySelector('[data-testid=messages]').getBoundingClientRect();
      const r = m.getBoundingClientRect();
      return r.bottom > s.top && r.top < s.bottom;
    });
    assert.ok(inView, `${before[0].text} (${topId}) stayed in view after loading older ones`);
    assert.ok(pages < 10, 'too many pages');
  }
}

test('scrolling up pages through history without gaps or duplicates', async () => {
  bob = new ConsoleClient(node, 'bob');
  bob.send('/join general');
  await bob.waitForLine((l) => l.startsWith('* joined #general'));
  for (let i = 1; i <= TOTAL; i++) bob.send(`message ${i}`);
  await bob.waitForLine(`[#general] bob: message ${TOTAL}`);
  await bob.close();

  const alice = await signIn(browser, node, 'alice');
  await joinRoom(alice, 'general');
  // The newest page is there at once, scrolled to the bottom.
  await waitForMessage(alice, `message ${TOTAL}`, 'bob');
  const first = await paneMessages(alice);
  assert.ok(first.length >= 50 && first.length < TOTAL, `first page has ${first.length} messages`);
  assert.equal(first.at(-1).text, `message ${TOTAL}`);
  const atBottom = await alice.$eval('[data-testid=messages]', (s) => s.scrollHeight - s.scrollTop - s.clientHeight < 5);
  assert.ok(atBottom, 'the pane starts at the newest message');

  const pages = await scrollToFirst(alice, 'message 1');
  assert.ok(pages >= 1, 'at least one older page was loaded by scrolling');

  const all = await paneMessages(alice);
  assert.deepEqual(
    all.map((m) => m.text),
    Array.from({ length: TOTAL }, (_, i) => `message ${i + 1}`),
  );
  assertOnceInOrder(all);
  // Exactly the room's stream as the node has it: nothing missing, nothing extra.
  const stream = await nodeHistory(alice, { room: 'general' }, { name: 'probe' });
  assert.deepEqual(
    all.map((m) => m.id),
    stream.map((m) => m.id),
  );
  // No more to load: the "load older" button is gone.
  await until(() => alice.$eval('[data-testid=load-older]', (b) => b.hidden), 'the load-older button to hide');
  await alice.$eval('[data-testid=messages]', (s) => {
    s.scrollTop = 0;
  });
  await screenshot(alice, 'history-top');
  assert.match(await visibleText(alice), /message 1\n/);
  await closePage(alice);
});

test('scrolling up pages through a direct conversation the same way', async () => {
  // Two registered users, both online in consoles: 120 direct messages, delivered (not queued).
  const ann = new ConsoleClient(node, 'ann', { password: 'ann-secret' });
  const ben = new ConsoleClient(node, 'ben', { password: 'ben-secret' });
  try {
    await ann.waitForLine((l) => l.startsWith('* connected to node web1 as ann (registered)'));
    await ben.waitForLine((l) => l.startsWith('* connected to node web1 as ben (registered)'));
    ben.send('/msg ann dm 1');
    for (let i = 2; i <= TOTAL; i++) ben.send(`dm ${i}`);
    await ann.waitForLine(`[@ben] ben: dm ${TOTAL}`);
  } finally {
    await ann.close();
    await ben.close();
  }

  // Ann signs in with a fresh page: the conversation is listed; opening it shows the newest page.
  const page = await signIn(browser, node, 'ann', { password: 'ann-secret' });
  await page.click('[data-testid=dm-list] [data-conv="@ann:ben"]');
  await waitForMessage(page, `dm ${TOTAL}`, 'ben');
  const first = await paneMessages(page);
  assert.ok(first.length >= 50 && first.length < TOTAL, `first page has ${first.length} messages`);
  assert.equal(first.at(-1).text, `dm ${TOTAL}`);

  const pages = await scrollToFirst(page, 'dm 1');
  assert.ok(pages >= 1, 'at least one older page was loaded by scrolling');
  const all = await paneMessages(page);
  assert.deepEqual(
    all.map((m) => `${m.from}: ${m.text}`),
    Array.from({ length: TOTAL }, (_, i) => `ben: dm ${i + 1}`),
  );
  assertOnceInOrder(all);
  const stream = await nodeHistory(page, { with: 'ben' }, { name: 'ann', password: 'ann-secret' });
  assert.deepEqual(
    all.map((m) => m.id),
    stream.map((m) => m.id),
  );
  await until(() => page.$eval('[data-testid=load-older]', (b) => b.hidden), 'the load-older button to hide');
  await screenshot(page, 'history-dm-top');
  await closePage(page);
});
