// The check that every screenshot of the browser tests goes through (lib.mjs screenshot()):
// it passes the page as it is, and fails on what a user would notice: a blank picture, a
// message whose text is not painted, parts of the page on top of each other or off the screen.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { Node, closePage, joinRoom, launchBrowser, say, screenshot, signIn, test, waitForMessage } from './lib.mjs';

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

/**
 * Sets `props` (CSS property: value) on the elements of `selector` (through the CSSOM: the
 * page's CSP refuses style tags), expects the screenshot check to fail with `why`, then takes
 * them off.
 */
async function failsWith(page, name, selector, props, why) {
  const set = (on) =>
    page.$$eval(
      selector,
      (els, [p, apply]) => {
        for (const el of els) {
          for (const [k, v] of Object.entries(p)) {
            if (apply) el.style.setProperty(k, v, 'important');
            else el.style.removeProperty(k);
          }
        }
      },
      [props, on],
    );
  await set(true);
  await assert.rejects(screenshot(page, name), why);
  await set(false);
}

test('the screenshot check fails on what a user would notice', async () => {
  const page = await signIn(browser, node, 'sam');
  await joinRoom(page, 'checks');
  await say(page, 'a line to be seen');
  await waitForMessage(page, 'a line to be seen', 'sam');
  const good = await screenshot(page, 'check-good');
  assert.equal(good.texts, 1, 'the message text was checked in the picture');

  await failsWith(page, 'check-blank', 'body', { opacity: '0' }, /looks blank/);
  await failsWith(
    page,
    'check-unpainted',
    '[data-testid=message-text]',
    { color: 'transparent' },
    /the text of message "a line to be seen" is not painted/,
  );
  await failsWith(
    page,
    'check-overlap',
    '[data-testid=composer-input]',
    { position: 'fixed', top: '200px', left: '500px', width: '300px' },
    /messages and composer-input overlap/,
  );
  await failsWith(
    page,
    'check-offscreen',
    '[data-testid=composer-send]',
    { position: 'fixed', left: '-40px' },
    /composer-send is not inside the viewport/,
  );
  await failsWith(page, 'check-hidden', '[data-testid=sidebar]', { visibility: 'hidden' }, /sidebar is not visible/);

  // With every style taken off again, the page passes as before.
  assert.equal((await screenshot(page, 'check-good')).texts, 1);
  await closePage(page);
});
