// Two linked nodes, a and b. The page is on a; a is killed: the page moves to b by itself,
// resumes there, and shows every message exactly once, in order, including those sent while it
// was moving. Then a comes back and b is stopped politely: its shutdown notice sends the page
// to a at once.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import {
  ConsoleClient,
  Node,
  closePage,
  joinRoom,
  launchBrowser,
  nodeHistory,
  paneMessages,
  say,
  screenshot,
  signIn,
  test,
  until,
  waitForMessage,
} from './lib.mjs';

let a;
let b;
let browser;
let alice;
const consoles = [];

before(async () => {
  a = await Node.cluster('a');
  b = await Node.cluster('b', { peers: [a] });
  await a.waitForPeer('b', 'up');
  browser = await launchBrowser();
});

after(async () => {
  for (const c of consoles) await c.close();
  await browser?.close();
  await a?.stop();
  await b?.stop();
});

const nodeLabel = (page) => page.evaluate(() => document.querySelector('[data-testid=node-label]').textContent);
const waitForNode = (page, node) =>
  page.waitForFunction((n) => document.querySelector('[data-testid=node-label]').textContent === `node ${n}`, node);

/** Records every text the banner shows from now on (the reconnect attempts go by quickly). */
const recordBanner = (page) =>
  page.evaluate(() => {
    window.bannerLog = [];
    const text = document.querySelector('[data-testid=banner-text]');
    new MutationObserver(() => {
      const t = text.textContent;
      if (t && window.bannerLog[window.bannerLog.length - 1] !== t) window.bannerLog.push(t);
    }).observe(text, { childList: true, subtree: true, characterData: true });
  });
const bannerLog = (page) => page.evaluate(() => window.bannerLog);

/** Checks that the pane holds each message once, exactly the room's stream as `node` has it. */
async function assertPaneIsStream(page, node) {
  const msgs = await paneMessages(page);
  const ids = msgs.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, 'no message is shown twice');
  const stream = await nodeHistory(page, { room: 'general' }, { name: `probe-${node.name}`, node });
  assert.deepEqual(ids, stream.map((m) => m.id), `the pane is the room's stream as node ${node.name} has it`);
  return msgs;
}

test('when its node dies, the page moves to the other node and misses nothing', async (t) => {
  alice = await signIn(browser, a, 'alice');
  await joinRoom(alice, 'general');
  await waitForNode(alice, 'a');
  // The page learnt the cluster from a's /v1/cluster.
  await alice.waitForFunction(() => document.querySelector('[data-testid=node-label]').dataset.servers === 'node a,node b');

  const bob = new ConsoleClient(b, 'bob');
  consoles.push(bob);
  await bob.waitForLine((l) => l.startsWith('* connected to node b as bob'));
  bob.send('/join general');
  await bob.waitForLine((l) => l.startsWith('* joined #general'));
  for (const text of ['before 1', 'before 2', 'before 3']) bob.send(text);
  await waitForMessage(alice, 'before 3', 'bob');
  await say(alice, 'alice on node a');
  await bob.waitForLine('[#general] alice: alice on node a');

  // Node a dies without a word; bob goes on talking on b while the page finds its way there.
  await recordBanner(alice);
  await a.stop('SIGKILL');
  const during = ['during 1', 'during 2', 'during 3', 'during 4', 'during 5'];
  for (const text of during) bob.send(text);
  await bob.waitForLine('[#general] bob: during 5');

  await waitForNode(alice, 'b');
  await waitForMessage(alice, 'during 5', 'bob');
  await alice.waitForFunction(() => document.querySelector('[data-testid=banner]').dataset.state !== 'reconnecting');
  const log = await bannerLog(alice);
  t.diagnostic(`banner: ${JSON.stringify(log)}`);
  assert.ok(log.some((l) => /^Reconnecting… attempt \d+: trying node b /.test(l)), 'the banner said it was trying node b');
  assert.ok(log.some((l) => l === 'Reconnected: now on node b.'), 'the banner said where the page is now');
  // b's /v1/cluster cannot be read from a page of a's origin (see the notes in
  // docs/web-client.md): the page keeps the list it had.
  assert.equal(await alice.evaluate(() => document.querySelector('[data-testid=node-label]').dataset.servers), 'node b,node a');

  // Live on b: bob's messages arrive, and the page's reach bob.
  for (const text of ['after 1', 'after 2']) bob.send(text);
  await waitForMessage(alice, 'after 2', 'bob');
  await say(alice, 'alice on node b');
  await bob.waitForLine('[#general] alice: alice on node b');
  await waitForMessage(alice, 'alice on node b', 'alice');
  assert.equal(bob.count('[#general] alice: alice on node b'), 1);

  const msgs = await assertPaneIsStream(alice, b);
  assert.deepEqual(
    msgs.map((m) => m.text),
    ['before 1', 'before 2', 'before 3', 'alice on node a', ...during, 'after 1', 'after 2', 'alice on node b'],
  );
  assert.equal(await nodeLabel(alice), 'node b');
  await screenshot(alice, 'failover-node-b');
});

test('a shutdown notice sends the page to another node at once', async () => {
  assert.ok(alice, 'the first test signed in');
  // a comes back (b re-dials it) and catches up with what b took while it was away.
  await a.start();
  await a.waitForPeer('b', 'up');
  await b.waitForPeer('a', 'up');
  const probe = { room: 'general' };
  await until(async () => {
    // Guest names are unique across the cluster: one probe name per node.
    const onA = await nodeHistory(alice, probe, { name: 'probe-a', node: a });
    const onB = await nodeHistory(alice, probe, { name: 'probe-b', node: b });
    return JSON.stringify(onA.map((m) => m.id)) === JSON.stringify(onB.map((m) => m.id));
  }, 'node a to catch up with node b');
  for (const c of consoles) await c.close();

  // b goes away politely: the page should not wait on it, but go to a with its first attempt.
  await recordBanner(alice);
  await b.stop('SIGTERM');
  await waitForNode(alice, 'a');
  const log = await bannerLog(alice);
  const attempts = log.filter((l) => l.includes('Reconnecting…'));
  assert.match(attempts[0], /Server shutting down: .*Reconnecting… attempt 1: trying node a now/, 'the first attempt goes to a, at once');
  assert.ok(!attempts.some((l) => /trying node b/.test(l)), `no attempt went to b: ${JSON.stringify(attempts)}`);

  const carol = new ConsoleClient(a, 'carol');
  consoles.push(carol);
  carol.send('/join general');
  await carol.waitForLine((l) => l.startsWith('* joined #general'));
  carol.send('carol on node a');
  await waitForMessage(alice, 'carol on node a', 'carol');
  await say(alice, 'alice back on node a');
  await carol.waitForLine('[#general] alice: alice back on node a');
  await waitForMessage(alice, 'alice back on node a', 'alice');

  const msgs = await assertPaneIsStream(alice, a);
  assert.deepEqual(msgs.slice(-3).map((m) => m.text), ['alice on node b', 'carol on node a', 'alice back on node a']);
  await screenshot(alice, 'failover-back-on-a');
  // The only errors allowed: the browser refusing the page's request for b's /v1/cluster.
  await closePage(alice, { allow: /\/v1\/cluster/ });
});
