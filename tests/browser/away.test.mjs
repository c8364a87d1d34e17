// Away in the browser: a console user goes away and comes back, and the page's online list
// shows a muted "away" label (the message as its tooltip and as screen-reader text) and
// then drops it; the page's own /away reaches the console.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { ConsoleClient, Node, closePage, joinRoom, launchBrowser, say, screenshot, signIn, test } from './lib.mjs';

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

test('the online list shows who is away, with their message', async () => {
  const alice = await signIn(browser, node, 'alice');
  await joinRoom(alice, 'general');
  const carol = new ConsoleClient(node, 'carol');
  await carol.waitForLine((l) => l.startsWith('* connected to node web1 as carol'));
  carol.send('/join general');
  await carol.waitForLine((l) => l.startsWith('* joined #general'));

  const label = '[data-testid=online-list] [data-testid=person][data-name=carol] [data-testid=away]';
  carol.send('/away out for lunch');
  await carol.waitForLine('* carol is away: out for lunch');
  await alice.waitForSelector(label);
  assert.equal(await alice.getAttribute(label, 'title'), 'out for lunch');
  assert.equal(await alice.textContent(label), ' away: out for lunch');
  await screenshot(alice, 'away-online-list');

  // The console sees its own state in whois.
  carol.send('/whois carol');
  await carol.waitForLine((l) => l.startsWith('* carol is online') && l.endsWith(', away: out for lunch'));

  carol.send('/away');
  await carol.waitForLine('* carol is back');
  await alice.waitForSelector(label, { state: 'detached' });

  // The page's own /away: the console sees alice go away and come back.
  const mine = '[data-testid=online-list] .me-person [data-testid=away]';
  await say(alice, '/away on the phone');
  await alice.waitForSelector(mine);
  await carol.waitForLine('* alice is away: on the phone');
  await say(alice, '/away');
  await alice.waitForSelector(mine, { state: 'detached' });
  await carol.waitForLine('* alice is back');
  await carol.close();
  await closePage(alice);
});
