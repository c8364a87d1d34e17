// A browser user and a console user (`switchboard chat --plain`) talk in a room and in private.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import {
  ConsoleClient,
  Node,
  closePage,
  joinRoom,
  launchBrowser,
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
let carol;

before(async () => {
  node = await Node.start();
  browser = await launchBrowser();
});

after(async () => {
  await carol?.close();
  await browser?.close();
  await node?.stop();
});

test('a browser user and a console user talk', async () => {
  const alice = await signIn(browser, node, 'alice');
  await joinRoom(alice, 'general');

  carol = new ConsoleClient(node, 'carol');
  await carol.waitForLine((l) => l.startsWith('* connected to node web1 as carol'));
  carol.send('/join general');
  await carol.waitForLine((l) => l.startsWith('* joined #general (2 here:'));

  // In the room: the console's message shows in the browser under its sender's name...
  carol.send('hello from console');
  await waitForMessage(alice, 'hello from console', 'carol');
  // ...and the browser's in the console, in its `[#room] sender: text` form.
  await say(alice, 'hello from the browser, carol');
  await carol.waitForLine('[#general] alice: hello from the browser, carol');
  // The console may print it before the page has drawn it: wait for the page too.
  await waitForMessage(alice, 'hello from the browser, carol', 'alice');
  assert.deepEqual(
    (await paneMessages(alice)).map((m) => `${m.from}: ${m.text}`),
    ['carol: hello from console', 'alice: hello from the browser, carol'],
  );
  await screenshot(alice, 'console-room');
  assert.match(await visibleText(alice), /carol\s+\d\d:\d\d\s+hello from console/);

  // In private, started from the browser's "Message a person" box.
  await alice.getByLabel('Message a person').fill('carol');
  await alice.getByLabel('Message a person').press('Enter');
  await alice.waitForFunction(() => document.querySelector('[data-testid=conv-title]').textContent === 'carol');
  await say(alice, 'just between us');
  await carol.waitForLine('[@alice] alice: just between us');
  carol.send('/msg alice a private answer');
  await waitForMessage(alice, 'a private answer', 'carol');
  assert.deepEqual(
    (await paneMessages(alice)).map((m) => `${m.from}: ${m.text}`),
    ['alice: just between us', 'carol: a private answer'],
  );
  await screenshot(alice, 'console-dm');

  // Each line reached the console once.
  assert.equal(carol.count('[#general] alice: hello from the browser, carol'), 1);
  assert.equal(carol.count('[@alice] alice: just between us'), 1);
  await closePage(alice);
});
