// Direct conversations of registered users across a node restart: messages sent while the page
// was away reach it once, although they come both from the offline inbox and from the history
// catch-up; and a new sign-in lists the user's conversations from `welcome.dms`.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import {
  ConsoleClient,
  Node,
  assertOnceInOrder,
  closePage,
  launchBrowser,
  nodeHistory,
  paneMessages,
  say,
  screenshot,
  signIn,
  test,
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

test('a registered user catches up on direct messages after a restart', async () => {
  const alice = await signIn(browser, node, 'alice', { password: 'alice-secret' });
  const bob = new ConsoleClient(node, 'bob', { password: 'bob-secret' });
  consoles.push(bob);
  await bob.waitForLine((l) => l.startsWith('* connected to node web1 as bob (registered)'));

  await alice.getByLabel('Message a person').fill('bob');
  await alice.getByLabel('Message a person').press('Enter');
  await alice.waitForFunction(() => document.querySelector('[data-testid=conv-title]').textContent === 'bob');
  await say(alice, 'hi bob');
  await bob.waitForLine('[@alice] alice: hi bob');
  bob.send('/msg alice dm 1');
  await waitForMessage(alice, 'dm 1', 'bob');

  await node.stop('SIGTERM');
  await alice.waitForSelector('[data-testid=banner-notice]');
  await alice.context().setOffline(true);
  await node.start();

  // Alice is offline and registered: Bob's messages wait in her inbox.
  const bob2 = new ConsoleClient(node, 'bob', { password: 'bob-secret' });
  consoles.push(bob2);
  bob2.send('/msg alice dm 2');
  bob2.send('dm 3');
  await bob2.waitForLine('[@alice] bob: dm 3');
  await bob2.waitForLine(() => bob2.lines.filter((l) => l.includes('is offline; your message is queued')).length === 2);

  await alice.context().setOffline(false);
  await waitForMessage(alice, 'dm 3', 'bob');
  await say(alice, 'back again');
  await bob2.waitForLine('[@alice] alice: back again');
  await waitForMessage(alice, 'back again', 'alice');
  const msgs = await paneMessages(alice);
  assert.deepEqual(
    msgs.map((m) => `${m.from}: ${m.text}`),
    ['alice: hi bob', 'bob: dm 1', 'bob: dm 2', 'bob: dm 3', 'alice: back again'],
  );
  assertOnceInOrder(msgs);
  const stream = await nodeHistory(alice, { with: 'bob' }, { name: 'alice', password: 'alice-secret' });
  assert.deepEqual(
    msgs.map((m) => m.id),
    stream.map((m) => m.id),
  );
  await screenshot(alice, 'dm-resume');

  // Another browser signs in as Alice: her conversation with Bob is listed and loads.
  const alice2 = await signIn(browser, node, 'alice', { password: 'alice-secret' });
  await alice2.waitForSelector('[data-testid=dm-list] [data-conv="@alice:bob"]');
  await alice2.click('[data-testid=dm-list] [data-conv="@alice:bob"]');
  await waitForMessage(alice2, 'back again', 'alice');
  assert.deepEqual(
    (await paneMessages(alice2)).map((m) => m.text),
    ['hi bob', 'dm 1', 'dm 2', 'dm 3', 'back again'],
  );
  await closePage(alice2);
  await closePage(alice);
});
