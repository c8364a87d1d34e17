// The node restarts under a browser user: the page shows the node's shutdown notice and that
// it is reconnecting, then rejoins the room and shows every message exactly once, in order,
// including those sent while it was away.

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
  say,
  screenshot,
  signIn,
  test,
  visibleText,
  waitForMessage,
} from './lib.mjs';

let node;
let browser;
const consoles = [];

before(async () => {
  node = await Node.start();
  browser = await launchBrowser();
});

after(async () => {
  for (const c of consoles) await c.close();
  await browser?.close();
  await node?.stop();
});

const bannerStatus = (page) =>
  page.evaluate(() => document.querySelector('[data-testid=banner]').dataset.state || '');

test('after a node restart the page reconnects and misses nothing', async (t) => {
  const alice = await signIn(browser, node, 'alice');
  await joinRoom(alice, 'general');

  const bob = new ConsoleClient(node, 'bob');
  consoles.push(bob);
  bob.send('/join general');
  await bob.waitForLine((l) => l.startsWith('* joined #general'));
  for (const text of ['before 1', 'before 2', 'before 3']) bob.send(text);
  await waitForMessage(alice, 'before 3', 'bob');
  await say(alice, 'alice before the restart');
  await bob.waitForLine('[#general] alice: alice before the restart');

  // SIGTERM: the node tells every client why it goes away, then stops.
  await node.stop('SIGTERM');
  await alice.waitForSelector('[data-testid=banner-notice]');
  const notice = await alice.textContent('[data-testid=banner-notice]');
  assert.match(notice, /^Server shutting down: .*SIGTERM/);
  await alice.waitForFunction(() => /Reconnecting/.test(document.querySelector('[data-testid=banner]').textContent));
  await bob.exited;
  await screenshot(alice, 'reconnect-shutdown-notice');
  const shown = await visibleText(alice);
  assert.match(shown, /Server shutting down/);
  assert.match(shown, /Reconnecting…/);

  // Keep the page offline while the node comes back and others talk, so that what they say
  // can only reach the page through the catch-up after it reconnects.
  await alice.context().setOffline(true);
  await node.start();
  const bob2 = new ConsoleClient(node, 'bob');
  consoles.push(bob2);
  bob2.send('/join general');
  await bob2.waitForLine((l) => l.startsWith('* joined #general'));
  const during = ['during 1', 'during 2', 'during 3', 'during 4', 'during 5'];
  for (const text of during) bob2.send(text);
  await bob2.waitForLine('[#general] bob: during 5');
  const stillAway = (await bannerStatus(alice)) === 'reconnecting';
  t.diagnostic(stillAway ? 'the page was still away: missed messages came from history' : 'the page was back already');
  assert.ok(stillAway, 'the page should not have reconnected while offline');
  await screenshot(alice, 'reconnect-reconnecting');

  // Back online: the page reconnects by itself and fills in what it missed.
  await alice.context().setOffline(false);
  await waitForMessage(alice, 'during 5', 'bob');
  await alice.waitForFunction(() => document.querySelector('[data-testid=banner]').dataset.state !== 'reconnecting');

  // Live again: new messages arrive, and the page's own reach the console.
  for (const text of ['after 1', 'after 2']) bob2.send(text);
  await waitForMessage(alice, 'after 2', 'bob');
  await say(alice, 'alice is back');
  await bob2.waitForLine('[#general] alice: alice is back');
  await waitForMessage(alice, 'alice is back', 'alice');

  const msgs = await paneMessages(alice);
  assert.deepEqual(
    msgs.map((m) => m.text),
    ['before 1', 'before 2', 'before 3', 'alice before the restart', ...during, 'after 1', 'after 2', 'alice is back'],
  );
  // Each message once, in stream order, and exactly the room's stream as the node has it.
  assertOnceInOrder(msgs);
  const stream = await nodeHistory(alice, { room: 'general' }, { name: 'probe' });
  assert.deepEqual(
    msgs.map((m) => m.id),
    stream.map((m) => m.id),
  );
  await screenshot(alice, 'reconnect-after');
  await closePage(alice);
});
