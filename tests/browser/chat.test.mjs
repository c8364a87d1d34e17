// Two people in two browsers: they chat in a room and in private, and each sees the other's
// messages under the right name; a room not in view counts what came until it is opened.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import {
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

before(async () => {
  node = await Node.start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await node?.stop();
});

test('two browser users chat in a room and in private', async () => {
  const alice = await signIn(browser, node, 'alice');
  const bob = await signIn(browser, node, 'bob');

  await joinRoom(alice, 'general');
  await joinRoom(bob, 'general');
  // Alice sees Bob arrive in the room's member count.
  await alice.waitForFunction(() => document.querySelector('[data-testid=conv-members]').textContent === '2 members');

  // Alice sets the room's topic; both see it.
  await say(alice, '/topic Plans for the week');
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => document.querySelector('[data-testid=conv-topic]').textContent === 'Plans for the week');
  }

  await say(alice, 'Hi Bob, welcome to #general!');
  await waitForMessage(bob, 'Hi Bob, welcome to #general!', 'alice');
  await say(bob, 'Thanks Alice. Multi-line\nmessages work too.');
  await waitForMessage(alice, 'Thanks Alice. Multi-line\nmessages work too.', 'bob');
  await waitForMessage(bob, 'Thanks Alice. Multi-line\nmessages work too.', 'bob');

  // Each sees both messages, in order, with the senders' names and a time.
  for (const page of [alice, bob]) {
    const msgs = await paneMessages(page);
    assert.deepEqual(
      msgs.map((m) => [m.from, m.text]),
      [
        ['alice', 'Hi Bob, welcome to #general!'],
        ['bob', 'Thanks Alice. Multi-line\nmessages work too.'],
      ],
    );
    const text = await visibleText(page);
    assert.match(text, /alice\s+\d\d:\d\d/);
    assert.match(text, /bob\s+\d\d:\d\d/);
    assert.match(text, /Today/);
  }

  // Who is online lists both; Bob opens a private conversation by clicking Alice.
  await bob.waitForSelector('[data-testid=online-list] [data-testid=person][data-name=alice]');
  await bob.click('[data-testid=online-list] [data-testid=person][data-name=alice]');
  await bob.waitForFunction(() => document.querySelector('[data-testid=conv-title]').textContent === 'alice');
  await say(bob, 'psst, this one is just for you');
  await waitForMessage(bob, 'psst, this one is just for you', 'bob');

  // Alice is in #general: the conversation shows up with an unread count.
  await alice.waitForSelector('[data-testid=dm-list] [data-conv="@alice:bob"] [data-testid=unread]');
  assert.equal(await alice.textContent('[data-testid=dm-list] [data-conv="@alice:bob"] [data-testid=unread]'), '1');
  await screenshot(alice, 'chat-unread');
  await alice.click('[data-testid=dm-list] [data-conv="@alice:bob"]');
  await waitForMessage(alice, 'psst, this one is just for you', 'bob');
  assert.equal(await alice.$('[data-testid=dm-list] [data-conv="@alice:bob"] [data-testid=unread]'), null);
  await say(alice, 'got it 👍');
  await waitForMessage(bob, 'got it 👍', 'alice');

  // The private messages stayed out of the room.
  await bob.click('[data-testid=room-list] [data-conv="#general"]');
  await waitForMessage(bob, 'Hi Bob, welcome to #general!', 'alice');
  const roomTexts = (await paneMessages(bob)).map((m) => m.text);
  assert.ok(!roomTexts.includes('psst, this one is just for you'));

  await bob.click('[data-testid=dm-list] [data-conv="@alice:bob"]');
  await waitForMessage(bob, 'got it 👍', 'alice');
  // Both messages are painted in the picture (checked by screenshot()).
  const shot = await screenshot(bob, 'chat-dm');
  assert.equal(shot.texts, 2, 'the two messages of the conversation are checked in the picture');
  assert.match(await visibleText(bob), /psst, this one is just for you[\s\S]*got it 👍/);

  // Bob leaves the room: it leaves his sidebar, and Alice sees one member left.
  await bob.click('[data-testid=room-list] [data-conv="#general"]');
  await bob.getByRole('button', { name: 'Leave room' }).click();
  await bob.waitForFunction(() => !document.querySelector('[data-testid=room-list] [data-conv="#general"]'));
  await alice.click('[data-testid=room-list] [data-conv="#general"]');
  await alice.waitForFunction(() => document.querySelector('[data-testid=conv-members]').textContent === '1 member');

  await closePage(alice);
  await closePage(bob);
});

test('a room the user is not viewing shows how many messages came, until it is opened', async () => {
  const gus = await signIn(browser, node, 'gus');
  const hal = await signIn(browser, node, 'hal');
  await joinRoom(gus, 'news');
  await joinRoom(hal, 'news');
  // Gus moves on to another room; #news stays in his sidebar.
  await joinRoom(gus, 'lobby');
  const newsRow = '[data-testid=room-list] [data-conv="#news"]';
  const badge = `${newsRow} [data-testid=unread]`;
  assert.equal(await gus.$(badge), null, 'nothing unread yet');

  for (const text of ['news 1', 'news 2', 'news 3']) await say(hal, text);
  await waitForMessage(hal, 'news 3', 'hal');
  await gus.waitForFunction((sel) => document.querySelector(sel)?.textContent === '3', badge);
  // Screen readers are told too; the room being viewed has no count.
  assert.match(await gus.textContent(newsRow), /, 3 unread/);
  assert.equal(await gus.$('[data-testid=room-list] [data-conv="#lobby"] [data-testid=unread]'), null);
  await screenshot(gus, 'chat-room-unread');

  // Opening the room shows the messages and clears the count.
  await gus.click(newsRow);
  await waitForMessage(gus, 'news 3', 'hal');
  await gus.waitForSelector(badge, { state: 'detached' });
  assert.doesNotMatch(await gus.textContent(newsRow), /unread/);
  assert.deepEqual((await paneMessages(gus)).map((m) => m.text), ['news 1', 'news 2', 'news 3']);
  // A message to the room being viewed adds no count.
  await say(hal, 'news 4');
  await waitForMessage(gus, 'news 4', 'hal');
  assert.equal(await gus.$(badge), null);
  await closePage(gus);
  await closePage(hal);
});
