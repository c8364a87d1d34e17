// Makes docs/screenshot.png, the picture of the web client in the README: a short conversation
// between two people, with the sidebar showing rooms, an unread count, alice's contacts (two of
// them online) and who is online.
// Run after `cargo build -p switchboard`:  node tests/browser/screenshot.mjs

import fs from 'node:fs';
import path from 'node:path';

import { execFileSync } from 'node:child_process';

import assert from 'node:assert/strict';

import { BIN, ROOT, Node, joinRoom, launchBrowser, say, screenshot, signIn, waitForMessage } from './lib.mjs';

const OUT = path.join(ROOT, 'docs/screenshot.png');

const node = await Node.start();
const browser = await launchBrowser();
try {
  const viewport = { width: 1100, height: 760 };
  // alice is registered, and has a contact book (set up from the command line).
  const contacts = [
    ['bob', '+44 20 7946 0958'],
    ['carol', '+1 (415) 555-0142'],
    ['Dr. Mina Okafor', '+234 1 555 0199'],
  ];
  for (const [name, phone] of contacts) {
    execFileSync(BIN, ['contacts', '--server', node.wsUrl, '--name', 'alice', '--password', 'alice-pw-1', 'set', name, phone]);
  }
  const alice = await signIn(browser, node, 'alice', { viewport, password: 'alice-pw-1' });
  const bob = await signIn(browser, node, 'bob', { viewport });
  const carol = await signIn(browser, node, 'carol', { viewport });

  for (const room of ['general', 'random', 'design']) await joinRoom(alice, room);
  await say(alice, '/topic Weekly design sync: mockups, feedback, next steps');
  await joinRoom(bob, 'design');
  await joinRoom(carol, 'general');

  const lines = [
    [bob, 'Morning! I pushed the new onboarding mockups.'],
    [bob, 'They are here: https://example.com/mockups/onboarding-v3'],
    [alice, 'These look great. The sign-in step is much clearer now.'],
    [alice, 'One thing: can we keep the password optional?\nGuests should be able to jump straight in.'],
    [bob, 'Agreed. I will make it optional and add a hint under the field.'],
    [alice, 'Perfect, thanks Bob!'],
  ];
  for (const [page, text] of lines) {
    await say(page, text);
    await waitForMessage(alice, text);
  }
  await say(carol, 'Anyone up for lunch at noon?');
  await carol.getByLabel('Message a person').fill('alice');
  await carol.getByLabel('Message a person').press('Enter');
  await carol.waitForFunction(() => document.querySelector('[data-testid=conv-title]').textContent === 'alice');
  await say(carol, 'Got a minute after the sync?');
  await alice.waitForSelector('[data-testid=dm-list] [data-testid=unread]');
  await alice.waitForSelector('[data-testid=room-list] [data-testid=unread]');
  // bob and carol joined rooms alice is in: after their presence, her contacts say they are online.
  await alice.waitForFunction(() => document.querySelectorAll('[data-testid=contact-online]').length === 2);
  await alice.mouse.move(0, viewport.height - 1);
  await alice.locator('[data-testid=composer-input]').blur();
  // The picture is of the page as it is now: the composer's hint lists every command.
  const hint = await alice.textContent('#composer-hint');
  for (const command of ['/join', '/leave', '/msg', '/topic', '/away']) assert.ok(hint.includes(command), `the hint lacks ${command}`);
  // Checked like the tests' screenshots: not blank, the parts of the page in view and apart,
  // and the messages painted.
  const shot = await screenshot(alice, 'docs-screenshot', { file: OUT });
  assert.equal(shot.texts, lines.length, 'every message of the conversation is in the picture');
  console.log(`wrote ${OUT} (${fs.statSync(OUT).size} bytes, ${shot.texts} messages checked)`);
} finally {
  await browser.close();
  await node.stop();
}
