// The contacts panel: a registered user's book in the sidebar. Adding, changing and deleting
// from the page (checked against `switchboard contacts list`), changes made from the console
// showing up live, online contacts opening a conversation, the page's and the node's refusals,
// the list fetched again after a reconnect, and the notice a guest gets instead.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before } from 'node:test';
import { promisify } from 'node:util';

import {
  BIN,
  ConsoleClient,
  Node,
  closePage,
  launchBrowser,
  screenshot,
  signIn,
  test,
  until,
  visibleText,
} from './lib.mjs';

const run = promisify(execFile);

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

/**
 * The book as the node has it: `switchboard contacts ... list`, one `name\tphone` line per
 * contact (and `\tonline` when a user of that name is online), as [name, phone] pairs, or
 * whole with `online`.
 */
async function cliList(name, password, { online = false } = {}) {
  const { stdout } = await run(BIN, ['contacts', '--server', node.wsUrl, '--name', name, '--password', password, 'list']);
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('\t').slice(0, online ? 3 : 2));
}

/** The panel's rows, top to bottom: {name, phone, online}. */
function rows(page) {
  return page.$$eval('[data-testid=contact-list] [data-testid=contact]', (els) =>
    els.map((e) => ({
      name: e.querySelector('[data-testid=contact-name]').textContent,
      phone: e.querySelector('[data-testid=contact-phone]').textContent,
      online: Boolean(e.querySelector('[data-testid=contact-online]')),
    })),
  );
}

/** Waits until the panel lists exactly these [name, phone] pairs, in this order. */
async function waitForRows(page, want) {
  await page.waitForFunction(
    (w) =>
      JSON.stringify(
        [...document.querySelectorAll('[data-testid=contact-list] [data-testid=contact]')].map((e) => [
          e.querySelector('[data-testid=contact-name]').textContent,
          e.querySelector('[data-testid=contact-phone]').textContent,
        ]),
      ) === JSON.stringify(w),
    want,
  );
}

/** Waits for the panel's status line (the live region) to say this. */
async function waitForStatus(page, text) {
  try {
    await page.waitForFunction((t) => document.querySelector('[data-testid=contacts-status]').textContent === t, text);
  } catch (err) {
    const shown = await page.getByTestId('contacts-status').textContent();
    throw new Error(`the status line says ${JSON.stringify(shown)}, not ${JSON.stringify(text)}`, { cause: err });
  }
}

/** Opens the form if it is closed, fills it and presses its button. */
async function saveContact(page, name, phone) {
  if (await page.getByTestId('contact-add').isVisible()) await page.getByTestId('contact-add').click();
  await page.getByLabel('Contact name').fill(name);
  await page.getByLabel('Phone number').fill(phone);
  await page.getByTestId('contact-submit').click();
}

const row = (page, name) => page.locator(`[data-testid=contact][data-name="${name}"]`);

const focused = (page) => page.evaluate(() => document.activeElement.dataset.focusKey || document.activeElement.id);

test('a registered user adds two contacts, changes one and deletes one', async () => {
  const page = await signIn(browser, node, 'dana', { password: 'dana-secret-1' });
  await page.waitForSelector('[data-testid=contacts-empty]');
  assert.equal(await page.getByTestId('contacts-guest').isVisible(), false);
  // The form opens from its button, with the focus in its first field.
  assert.equal(await page.getByTestId('contact-form').isVisible(), false);
  await page.getByRole('button', { name: 'Add a contact' }).click();
  assert.equal(await focused(page), 'contact-name');

  // Two contacts; the list is sorted by name whatever the order they were added in.
  await saveContact(page, 'Bea', '+44 20 7946 0000');
  await waitForRows(page, [['Bea', '+44 20 7946 0000']]);
  await waitForStatus(page, 'Added Bea: +44 20 7946 0000.');
  await saveContact(page, 'Ana', '555-0101');
  await waitForRows(page, [['Ana', '555-0101'], ['Bea', '+44 20 7946 0000']]);
  assert.equal(await page.inputValue('[data-testid=contact-name-input]'), '', 'the form is cleared after saving');
  assert.equal(await page.getByTestId('contacts-count').textContent(), '2');
  assert.deepEqual(await cliList('dana', 'dana-secret-1'), [['Ana', '555-0101'], ['Bea', '+44 20 7946 0000']]);

  // Changing Ana's number: "Edit" puts her in the form, whose button then says so.
  await row(page, 'Ana').getByTestId('contact-edit').click();
  assert.equal(await page.inputValue('[data-testid=contact-name-input]'), 'Ana');
  assert.equal(await page.inputValue('[data-testid=contact-phone-input]'), '555-0101');
  assert.equal(await focused(page), 'contact-phone');
  assert.equal(await page.getByTestId('contact-submit').textContent(), 'Change number');
  await page.keyboard.type('(555) 0199');
  await page.keyboard.press('Enter');
  await waitForRows(page, [['Ana', '(555) 0199'], ['Bea', '+44 20 7946 0000']]);
  await waitForStatus(page, 'Changed the number of Ana to (555) 0199.');
  assert.equal(await page.getByTestId('contact-submit').textContent(), 'Add contact');
  assert.deepEqual(await cliList('dana', 'dana-secret-1'), [['Ana', '(555) 0199'], ['Bea', '+44 20 7946 0000']]);

  // Deleting Bea with the keyboard: the question comes with the focus on "Cancel"; Escape
  // takes it back (and does not delete); then Delete.
  await row(page, 'Bea').getByTestId('contact-delete').focus();
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid=contact][data-name=Bea] [data-testid=contact-confirm]');
  assert.equal(await row(page, 'Bea').getByRole('group', { name: 'Delete Bea?' }).count(), 1);
  assert.equal(await focused(page), 'cancel:Bea');
  await screenshot(page, 'contacts-confirm');
  await page.keyboard.press('Escape');
  await page.waitForSelector('[data-testid=contact-confirm]', { state: 'detached' });
  assert.equal(await focused(page), 'delete:Bea');
  assert.equal(await page.getByTestId('app').isVisible(), true);
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid=contact-confirm]');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focused(page), 'confirm:Bea');
  await page.keyboard.press('Enter');
  await waitForRows(page, [['Ana', '(555) 0199']]);
  await waitForStatus(page, 'Deleted Bea.');
  assert.deepEqual(await cliList('dana', 'dana-secret-1'), [['Ana', '(555) 0199']]);
  // The focus went to a control that is still there, not to the page's body.
  assert.notEqual(await page.evaluate(() => document.activeElement.tagName), 'BODY');

  // Deleting with the mouse, and the live region's role.
  await row(page, 'Ana').getByRole('button', { name: 'Delete Ana' }).click();
  await row(page, 'Ana').getByTestId('contact-delete-confirm').click();
  await page.waitForSelector('[data-testid=contacts-empty]');
  assert.deepEqual(await cliList('dana', 'dana-secret-1'), []);
  assert.equal(await page.getAttribute('[data-testid=contacts-status]', 'aria-live'), 'polite');

  // Escape closes the form and gives the focus back to its button.
  await page.getByLabel('Contact name').focus();
  await page.keyboard.press('Escape');
  await page.waitForSelector('[data-testid=contact-form]', { state: 'hidden' });
  assert.equal(await focused(page), 'contact-add');
  await closePage(page);
});

test('a change made from the console shows in the page without a reload', async () => {
  const page = await signIn(browser, node, 'eli', { password: 'eli-secret-1' });
  await saveContact(page, 'Zed', '999');
  await waitForRows(page, [['Zed', '999']]);
  await page.evaluate(() => {
    window.notReloaded = true;
  });

  const con = new ConsoleClient(node, 'eli', { password: 'eli-secret-1' });
  consoles.push(con);
  await con.waitForLine((l) => l.startsWith('* connected to node web1 as eli'));
  con.send('/contact set Bea 333');
  await con.waitForLine('* contact Bea: 333');
  await waitForRows(page, [['Bea', '333'], ['Zed', '999']]);
  await waitForStatus(page, 'Bea was added from another session: 333.');
  con.send('/contact set Zed +1 (800) 555-0000');
  await con.waitForLine('* contact Zed: +1 (800) 555-0000');
  await waitForRows(page, [['Bea', '333'], ['Zed', '+1 (800) 555-0000']]);
  await waitForStatus(page, 'The number of Zed was changed from another session: +1 (800) 555-0000.');
  con.send('/contact del Zed');
  await con.waitForLine('* contact Zed deleted');
  await waitForRows(page, [['Bea', '333']]);
  await waitForStatus(page, 'Zed was deleted from another session.');
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');

  // And the other way: what the page saves reaches the console.
  await saveContact(page, 'Cy', '42');
  await con.waitForLine('* contact Cy: 42');
  assert.deepEqual(await cliList('eli', 'eli-secret-1'), [['Bea', '333'], ['Cy', '42']]);
  await con.close();
  await closePage(page);
});

test('a contact who is online is marked so, and opens a conversation', async () => {
  const fay = await signIn(browser, node, 'fay');
  const page = await signIn(browser, node, 'gus', { password: 'gus-secret-1' });
  await saveContact(page, 'fay', '101');
  await saveContact(page, 'Hal', '202');
  await waitForRows(page, [['fay', '101'], ['Hal', '202']]);
  await page.waitForFunction(() => document.querySelector('[data-testid=contact][data-name=fay] [data-testid=contact-online]'));
  assert.deepEqual(await rows(page), [
    { name: 'fay', phone: '101', online: true },
    { name: 'Hal', phone: '202', online: false },
  ]);
  // Hal is nobody online: his name is no button.
  assert.equal(await row(page, 'Hal').getByTestId('contact-open').count(), 0);
  await screenshot(page, 'contacts-online');
  await row(page, 'fay').getByTestId('contact-open').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=conv-title]').textContent === 'fay');
  await page.getByTestId('composer-input').fill('hi fay, from your contacts');
  await page.getByTestId('composer-input').press('Enter');
  // It reached fay: the conversation is in her sidebar, unread.
  await fay.waitForSelector('[data-testid=dm-list] [data-conv="@fay:gus"] [data-testid=unread]');

  // fay leaves: the next refresh (at sign-in, after a reconnect, every 20 s) says so.
  await closePage(fay);
  await until(async () => {
    const list = await cliList('gus', 'gus-secret-1', { online: true });
    // The node sorts by code point (capitals first); the page as people read.
    return JSON.stringify(list) === JSON.stringify([['Hal', '202'], ['fay', '101']]);
  }, 'fay to be offline');
  await page.reload();
  await page.getByLabel('Name', { exact: true }).fill('gus');
  await page.getByLabel('Password').fill('gus-secret-1');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await waitForRows(page, [['fay', '101'], ['Hal', '202']]);
  assert.deepEqual(
    (await rows(page)).map((r) => r.online),
    [false, false],
  );
  await closePage(page);
});

test('an invalid number is refused by the page, and the node\'s refusal is shown too', async () => {
  // The page's connection goes through the test, which can change what the page sends.
  let rewrite = null;
  const prepare = (p) =>
    p.routeWebSocket(/\/v1\/ws$/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => server.send(rewrite ? rewrite(m) : m));
    });
  const page = await signIn(browser, node, 'ivy', { password: 'ivy-secret-1', prepare });

  // The page's own check: nothing is sent, the field is marked, the reason is given.
  await saveContact(page, 'Jo', '12a');
  await page.waitForSelector('[data-testid=contact-error]:not([hidden])');
  assert.match(await page.getByTestId('contact-error').textContent(), /A phone number has digits and only/);
  assert.equal(await page.getAttribute('[data-testid=contact-phone-input]', 'aria-invalid'), 'true');
  assert.equal(await page.getByTestId('contact-error').getAttribute('role'), 'alert');
  await screenshot(page, 'contacts-invalid');
  await saveContact(page, 'Jo', '1'.repeat(21));
  await page.waitForFunction(() => document.querySelector('[data-testid=contact-error]').textContent.includes('at most 20'));
  await saveContact(page, '   ', '123');
  await page.waitForFunction(() => document.querySelector('[data-testid=contact-error]').textContent.includes('needs a name'));
  assert.equal(await page.getAttribute('[data-testid=contact-name-input]', 'aria-invalid'), 'true');
  assert.deepEqual(await cliList('ivy', 'ivy-secret-1'), []);

  // The node's check: the number is spoilt on the way, so only the node sees it is wrong;
  // its code and message are shown as they came.
  rewrite = (m) => {
    const f = JSON.parse(m);
    return f.type === 'contact_set' ? JSON.stringify({ ...f, phone: `${f.phone}x` }) : m;
  };
  await saveContact(page, 'Jo', '0800 000 000');
  await page.waitForFunction(() => document.querySelector('[data-testid=contact-error]').textContent.startsWith('bad_request'));
  const shown = await page.getByTestId('contact-error').textContent();
  assert.match(shown, /^bad_request a phone number has digits and only '\+', spaces, '-', '\(' and '\)'/);
  assert.equal(await page.getAttribute('[data-testid=contact-phone-input]', 'aria-invalid'), 'true');
  assert.equal(await page.inputValue('[data-testid=contact-phone-input]'), '0800 000 000', 'what was typed is kept');
  rewrite = null;
  await page.getByTestId('contact-submit').click();
  await waitForRows(page, [['Jo', '0800 000 000']]);
  assert.equal(await page.getByTestId('contact-error').isVisible(), false);
  assert.deepEqual(await cliList('ivy', 'ivy-secret-1'), [['Jo', '0800 000 000']]);
  await closePage(page);
});

test('after a reconnect the book is fetched again', async () => {
  // The test holds the page's connection: it cuts it, and keeps the page out for a while.
  let blocked = false;
  const open = [];
  const prepare = (p) =>
    p.routeWebSocket(/\/v1\/ws$/, (ws) => {
      if (blocked) {
        ws.close({ code: 1013, reason: 'held out by the test' });
        return;
      }
      const server = ws.connectToServer();
      open.push({ ws, server });
    });
  const page = await signIn(browser, node, 'kai', { password: 'kai-secret-1', prepare });
  await saveContact(page, 'Lu', '11');
  await waitForRows(page, [['Lu', '11']]);

  blocked = true;
  for (const { ws, server } of open.splice(0)) {
    await server.close();
    await ws.close();
  }
  await page.waitForSelector('[data-testid=banner-status]');
  // Changed while the page is away: no live frame can tell it.
  await run(BIN, ['contacts', '--server', node.wsUrl, '--name', 'kai', '--password', 'kai-secret-1', 'set', 'Mo', '22']);
  await run(BIN, ['contacts', '--server', node.wsUrl, '--name', 'kai', '--password', 'kai-secret-1', 'delete', 'Lu']);
  assert.deepEqual(await rows(page), [{ name: 'Lu', phone: '11', online: false }], 'the page still shows what it had');

  blocked = false;
  await waitForRows(page, [['Mo', '22']]);
  await waitForStatus(page, 'Contacts updated: Lu deleted, Mo added.');
  await closePage(page);
});

test('a guest is told that contact books need a registered name', async () => {
  const sent = [];
  const page = await signIn(browser, node, 'nia', {
    prepare: (p) => p.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(String(f.payload)))),
  });
  await page.waitForSelector('[data-testid=contacts-guest]:not([hidden])');
  assert.match(await visibleText(page), /Contact books need a registered name: sign out, then sign in with a password/);
  assert.equal(await page.getByTestId('contact-form').isVisible(), false);
  assert.equal(await page.getByTestId('contacts-body').isVisible(), false);
  await screenshot(page, 'contacts-guest');
  // Nothing about contacts was asked of the node.
  await page.evaluate(() => new Promise((r) => setTimeout(r, 500)));
  assert.ok(sent.some((f) => f.includes('"who"')), 'the page did talk to the node');
  assert.deepEqual(sent.filter((f) => /"type":"contact/.test(f)), []);
  await closePage(page);
});

test('the panel fits a phone', async () => {
  const page = await signIn(browser, node, 'oz', { password: 'oz-secret-1', viewport: { width: 390, height: 780 } });
  await page.getByTestId('sidebar-toggle').click();
  await page.waitForFunction(() => getComputedStyle(document.querySelector('[data-testid=sidebar]')).transform === 'none');
  await saveContact(page, 'Penelope Featherstonehaugh-Cholmondeley', '+44 (0) 20 7946 0958');
  await saveContact(page, 'Q', '1');
  await waitForRows(page, [
    ['Penelope Featherstonehaugh-Cholmondeley', '+44 (0) 20 7946 0958'],
    ['Q', '1'],
  ]);
  await page.getByTestId('contacts').scrollIntoViewIfNeeded();
  await row(page, 'Q').getByTestId('contact-delete').click();
  await screenshot(page, 'contacts-phone');
  const overflow = await page.evaluate(() => {
    const s = document.querySelector('[data-testid=sidebar]');
    return { page: document.documentElement.scrollWidth - window.innerWidth, sidebar: s.scrollWidth - s.clientWidth };
  });
  assert.ok(overflow.page <= 0, `the page is ${overflow.page}px wider than the screen`);
  assert.ok(overflow.sidebar <= 0, `the drawer is ${overflow.sidebar}px wider than itself`);
  // The confirmation's Escape answers the question, and leaves the drawer open.
  await page.keyboard.press('Escape');
  await page.waitForSelector('[data-testid=contact-confirm]', { state: 'detached' });
  assert.equal(await page.getByTestId('sidebar-toggle').getAttribute('aria-expanded'), 'true');
  await closePage(page);
});
