// Keyboard only, labels, the live region, and a phone-width screen.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import {
  Node,
  closePage,
  launchBrowser,
  openPage,
  paneMessages,
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

/** The accessible name-ish description of the focused element. */
const focused = (page) =>
  page.evaluate(() => {
    const a = document.activeElement;
    return a.getAttribute('data-testid') || a.id || a.tagName;
  });

test('usable with the keyboard alone, with labels and a live region', async () => {
  const page = await openPage(browser, node);
  // Every input and textarea has a label.
  const unlabelled = await page.$$eval('input, textarea', (els) => els.filter((e) => !e.labels || e.labels.length === 0).map((e) => e.id));
  assert.deepEqual(unlabelled, []);

  // Sign in with the keyboard: the name field has focus on load.
  assert.equal(await focused(page), 'signin-name');
  await page.keyboard.type('kim');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('[data-testid=me-name]').textContent === 'kim');

  // Focus goes to the room box; type a room and Enter.
  assert.equal(await focused(page), 'join-input');
  await page.keyboard.type('general');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('[data-testid=conv-title]').textContent === '#general');
  assert.equal(await focused(page), 'composer-input');

  // Shift+Enter adds a line, Enter sends.
  await page.keyboard.type('line one');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('line two');
  await page.keyboard.press('Enter');
  await waitForMessage(page, 'line one\nline two', 'kim');
  assert.equal(await page.inputValue('[data-testid=composer-input]'), '');

  // Tab reaches the send button and the conversation list; focus is visible.
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'composer-send');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none', 'the focused button shows a focus ring');
  // On from there: past the end of the page, the skip link and "Sign out", to the conversation
  // list, where the room is the current one and its focus shows too.
  const passed = [];
  for (let i = 0; i < 6 && (await focused(page)) !== 'conv'; i++) {
    await page.keyboard.press('Tab');
    passed.push(await focused(page));
  }
  assert.equal(await focused(page), 'conv', `Tab went through ${passed.join(', ')} without reaching the conversation list`);
  const conv = await page.evaluate(() => ({
    key: document.activeElement.dataset.conv,
    inList: Boolean(document.activeElement.closest('[data-testid=room-list]')),
    current: document.activeElement.getAttribute('aria-current'),
    outline: getComputedStyle(document.activeElement).outlineStyle,
  }));
  assert.deepEqual([conv.key, conv.inList, conv.current], ['#general', true, 'page']);
  assert.notEqual(conv.outline, 'none', 'the focused conversation shows a focus ring');

  // Someone else's message is read out by the live region.
  const lee = await signIn(browser, node, 'lee');
  await lee.getByLabel('Join or create a room').fill('general');
  await lee.getByLabel('Join or create a room').press('Enter');
  await lee.waitForFunction(() => document.querySelector('[data-testid=conv-title]').textContent === '#general');
  await lee.getByTestId('composer-input').fill('hello kim');
  await lee.getByTestId('composer-input').press('Enter');
  await waitForMessage(page, 'hello kim', 'lee');
  assert.equal(await page.getAttribute('[data-testid=announcer]', 'aria-live'), 'polite');
  await page.waitForFunction(() => document.querySelector('[data-testid=announcer]').textContent.includes('lee in #general: hello kim'));

  // Buttons are buttons.
  const fakeButtons = await page.$$eval('[onclick], div[role=button], span[role=button]', (els) => els.length);
  assert.equal(fakeButtons, 0);
  await closePage(lee);
  await closePage(page);
});

test('a phone-width screen gets a drawer for the sidebar', async () => {
  const page = await signIn(browser, node, 'pat', { viewport: { width: 390, height: 780 } });
  const sidebar = page.getByTestId('sidebar');
  const toggle = page.getByTestId('sidebar-toggle');
  // The sidebar starts closed: the conversation has the whole width.
  assert.equal(await sidebar.isVisible(), false);
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');

  await toggle.click();
  await page.waitForFunction(() => (getComputedStyle(document.querySelector('[data-testid=sidebar]')).transform === 'none'));
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  await page.getByLabel('Join or create a room').fill('phones');
  await page.getByLabel('Join or create a room').press('Enter');
  await page.waitForFunction(() => document.querySelector('[data-testid=conv-title]').textContent === '#phones');
  // Opening a conversation closes the drawer.
  await page.waitForFunction(() => getComputedStyle(document.querySelector('[data-testid=sidebar]')).visibility === 'hidden');
  await page.getByTestId('composer-input').fill('hi from a phone');
  await page.getByTestId('composer-input').press('Enter');
  await waitForMessage(page, 'hi from a phone', 'pat');
  await screenshot(page, 'phone-conversation');
  assert.match(await visibleText(page), /hi from a phone/);

  // Escape closes the drawer too, and gives focus back to its button.
  await toggle.click();
  await page.waitForFunction(() => (getComputedStyle(document.querySelector('[data-testid=sidebar]')).transform === 'none'));
  await screenshot(page, 'phone-sidebar');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => getComputedStyle(document.querySelector('[data-testid=sidebar]')).visibility === 'hidden');
  assert.equal(await focused(page), 'sidebar-toggle');
  // Nothing is wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  assert.equal((await paneMessages(page)).length, 1);
  await closePage(page);
});
