// What others send cannot become markup or script in the page; links are clickable and safe;
// refusals from the node (an unknown name, a taken name) are shown plainly; topics, away
// messages and contact names are text too.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import {
  Node,
  closePage,
  joinRoom,
  launchBrowser,
  openPage,
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

const HTML = '<img src=x onerror=alert(1)><b>bold</b>';
const LINKS = 'docs: https://example.com/docs?q=1&r=2. <a href="javascript:alert(3)">this</a> and javascript:alert(2) are not links';

test('an HTML-looking message stays text, and a URL becomes a safe link', async () => {
  const alice = await signIn(browser, node, 'alice');
  const bob = await signIn(browser, node, 'bob');
  let dialogs = 0;
  for (const p of [alice, bob]) {
    p.on('dialog', (d) => {
      dialogs += 1;
      d.dismiss();
    });
  }
  await joinRoom(alice, 'general');
  await joinRoom(bob, 'general');

  await say(alice, HTML);
  await say(alice, LINKS);
  await waitForMessage(bob, HTML, 'alice');
  await waitForMessage(bob, LINKS, 'alice');

  for (const page of [alice, bob]) {
    const pane = '[data-testid=message-list]';
    // The literal text is there, and no element was made from it.
    assert.equal(await page.$$eval(`${pane} img, ${pane} b, ${pane} script, ${pane} iframe`, (els) => els.length), 0);
    const text = await visibleText(page);
    assert.ok(text.includes(HTML), 'the HTML-looking message is shown as typed');
    assert.ok(text.includes(LINKS), 'the message with links is shown as typed');
    // Exactly one link, to the http URL, opening safely in a new tab.
    const links = await page.$$eval(`${pane} a`, (as) =>
      as.map((a) => ({ href: a.getAttribute('href'), text: a.textContent, rel: a.rel, target: a.target })),
    );
    assert.deepEqual(links, [
      {
        href: 'https://example.com/docs?q=1&r=2',
        text: 'https://example.com/docs?q=1&r=2',
        rel: 'noopener noreferrer',
        target: '_blank',
      },
    ]);
  }
  await screenshot(bob, 'safety-html-and-link');

  // Names are text too: a name that would be markup is refused by the node, and shown plainly.
  const mallory = await openPage(browser, node);
  await mallory.getByLabel('Name', { exact: true }).fill('<b>x</b>');
  await mallory.getByRole('button', { name: 'Sign in' }).click();
  await mallory.waitForSelector('[data-testid=signin-error]:not([hidden])');
  assert.match(await mallory.textContent('[data-testid=signin-error]'), /invalid_name/);
  await closePage(mallory);

  assert.equal(dialogs, 0, 'no script ran');
  await closePage(alice);
  await closePage(bob);
});

test('refusals are shown plainly: unknown name, taken name, wrong password', async () => {
  const carol = await signIn(browser, node, 'carol');
  await carol.getByLabel('Message a person').fill('nobody-here');
  await carol.getByLabel('Message a person').press('Enter');
  await carol.waitForSelector('[data-testid=sidebar-error]:not([hidden])');
  const err = await carol.textContent('[data-testid=sidebar-error]');
  assert.match(err, /not_found/);
  assert.match(err, /nobody-here/);
  await screenshot(carol, 'safety-not-found');
  assert.match(await visibleText(carol), /not_found/);

  // Someone else holds the guest name "carol".
  const other = await openPage(browser, node);
  await other.getByLabel('Name', { exact: true }).fill('carol');
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.waitForSelector('[data-testid=signin-error]:not([hidden])');
  assert.match(await other.textContent('[data-testid=signin-error]'), /name_in_use/);

  // A registered name: the right password opens it, a wrong one is refused.
  const dave = await signIn(browser, node, 'dave', { password: 'correct horse' });
  await dave.getByTestId('signout').click();
  await dave.waitForSelector('[data-testid=signin]:not([hidden])');
  await dave.getByLabel('Name', { exact: true }).fill('dave');
  await dave.getByLabel('Password').fill('wrong');
  await dave.getByRole('button', { name: 'Sign in' }).click();
  await dave.waitForSelector('[data-testid=signin-error]:not([hidden])');
  assert.match(await dave.textContent('[data-testid=signin-error]'), /auth_failed/);
  await screenshot(dave, 'safety-auth-failed');
  await dave.getByLabel('Password').fill('correct horse');
  await dave.getByRole('button', { name: 'Sign in' }).click();
  await dave.waitForFunction(() => document.querySelector('[data-testid=me-name]').textContent === 'dave');

  await closePage(other);
  await closePage(dave);
  await closePage(carol);
});

/** Elements that markup typed by someone would make; the page itself has none of them. */
const FOREIGN = 'img:not([src="/web/favicon.svg"]), b, i, iframe, script:not([src])';

test('markup in a topic, an away message and a contact name is shown as text', async () => {
  const erin = await signIn(browser, node, 'erin', { password: 'erin-secret' });
  const finn = await signIn(browser, node, 'finn');
  let dialogs = 0;
  for (const p of [erin, finn]) {
    p.on('dialog', (d) => {
      dialogs += 1;
      d.dismiss();
    });
  }
  await joinRoom(erin, 'markup');
  await joinRoom(finn, 'markup');

  // A topic: both pages show it as typed, in the room's header.
  const topic = `topic ${HTML}`;
  await say(finn, `/topic ${topic}`);
  for (const page of [erin, finn]) {
    await page.waitForFunction((t) => document.querySelector('[data-testid=conv-topic]').textContent === t, topic);
  }

  // An away message: the online list's "away" and its tooltip are the text as typed.
  const away = `away <i>now</i> ${HTML}`;
  await say(finn, `/away ${away}`);
  const label = '[data-testid=online-list] [data-testid=person][data-name=finn] [data-testid=away]';
  await erin.waitForSelector(label);
  assert.equal(await erin.getAttribute(label, 'title'), away);
  assert.equal(await erin.textContent(label), ` away: ${away}`);

  // A contact name in erin's book (a registered user).
  const contact = '<b>Bea</b><img src=x onerror=alert(2)>';
  await erin.getByTestId('contact-add').click();
  await erin.getByLabel('Contact name').fill(contact);
  await erin.getByLabel('Phone number').fill('555 0100');
  await erin.getByTestId('contact-submit').click();
  await erin.waitForSelector('[data-testid=contact-list] [data-testid=contact]');
  assert.equal(await erin.textContent('[data-testid=contact-list] [data-testid=contact-name]'), contact);
  assert.equal(await erin.textContent('[data-testid=contact-list] [data-testid=contact-phone]'), '555 0100');

  // None of it became an element, and no script ran.
  for (const page of [erin, finn]) {
    assert.deepEqual(await page.$$eval(FOREIGN, (els) => els.map((e) => e.outerHTML)), []);
  }
  const text = await visibleText(erin);
  for (const typed of [topic, contact]) assert.ok(text.includes(typed), `${typed} is shown as typed`);
  await screenshot(erin, 'safety-markup-fields');
  assert.equal(dialogs, 0, 'no script ran');
  await closePage(erin);
  await closePage(finn);
});
