// The contacts panel's logic (registered users): the book is fetched at sign-in, after every
// reconnect (it may have changed on another node meanwhile) and with each refresh of who is
// online (for the "online" marks); `contact` frames without a ref bring changes made by the
// user's other sessions (the console, another tab, another node). The form adds a contact or
// changes a number; deleting is confirmed in the row (contacts-view.js draws the rows).

import { $, conn, state, ui, withHint } from './page.js';
import { contactProblem, sameName, trimSpace } from './state.js';
import { openDm } from './conversations.js';
import { scheduleWho } from './online.js';
import { ContactsPanel } from './contacts-view.js';
import { showError } from './views.js';

export const contactsPanel = new ContactsPanel(
  {
    section: $('contacts'),
    guest: $('contacts-guest'),
    body: $('contacts-body'),
    list: $('contact-list'),
    count: $('contacts-count'),
    status: $('contacts-status'),
    name: $('contact-name'),
  },
  {
    open: (name) => openDm(name).catch((err) => showError(ui.contactError, withHint(err))),
    edit: (contact) => editContact(contact),
    remove: (name) => deleteContact(name),
  },
);

export function renderContacts() {
  contactsPanel.render(state.contacts, { registered: state.registered, me: state.me });
  updateContactSubmit();
}

/** What a change of the book was, in a short sentence for the status line. */
function describeContact({ name, change, phone }, { mine }) {
  if (mine) {
    if (change === 'added') return `Added ${name}: ${phone}.`;
    if (change === 'changed') return `Changed the number of ${name} to ${phone}.`;
    return `Deleted ${name}.`;
  }
  if (change === 'added') return `${name} was added from another session: ${phone}.`;
  if (change === 'changed') return `The number of ${name} was changed from another session: ${phone}.`;
  return `${name} was deleted from another session.`;
}

/** Changes found by a refresh (e.g. made on another node while the page was away). */
function describeRefresh(changes) {
  const words = { added: 'added', changed: 'changed', deleted: 'deleted' };
  const parts = changes.slice(0, 3).map((c) => `${c.name} ${words[c.change]}`);
  if (changes.length > 3) parts.push(`${changes.length - 3} more`);
  return `Contacts updated: ${parts.join(', ')}.`;
}

/** Fetches the whole book (registered users only: guests have none, and ask nothing). */
export async function refreshContacts() {
  const c = conn;
  if (!c || !c.ready || !state.registered) return;
  const book = state.contacts;
  const first = !book.loaded;
  try {
    const reply = await c.request({ type: 'contacts' });
    if (conn !== c || state.contacts !== book) return;
    const changes = book.replace(reply.contacts);
    renderContacts();
    if (!first && changes.length) contactsPanel.say(describeRefresh(changes));
  } catch (err) {
    if (conn !== c) return;
    if (err.code === 'registration_required') {
      // The node says this is not a registered name: it knows best.
      state.registered = false;
      renderContacts();
    } else if (first && err.code !== 'disconnected') {
      showError(ui.contactError, withHint(err));
    }
  }
}

/** A contact frame without ref: a change made by another session of this user. */
export function onContactNews(msg) {
  const online = state.online.some((n) => sameName(n, msg.name));
  const change = state.contacts.apply(msg, online);
  if (!change) return;
  renderContacts();
  contactsPanel.say(describeContact(change, { mine: false }));
  // Whether a new contact is online is the node's to say (the page's `who` may be old).
  if (change.change === 'added') scheduleWho();
}

/** The submit button says what it will do: add a contact, or change a number. */
function updateContactSubmit() {
  const known = state.contacts.get(trimSpace(ui.contactName.value));
  ui.contactSubmit.textContent = known ? 'Change number' : 'Add contact';
}

function clearContactError() {
  showError(ui.contactError, null);
  ui.contactName.removeAttribute('aria-invalid');
  ui.contactPhone.removeAttribute('aria-invalid');
}

/**
 * Shows why a contact was refused, by the page's check or by the node (code and message), and
 * marks the field at fault.
 */
function showContactError(err, field = null) {
  showError(ui.contactError, err);
  const input = field === 'name' ? ui.contactName : field === 'phone' ? ui.contactPhone : null;
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
}

const CONTACT_HINTS = {
  disconnected: 'The change may not have been saved: the list is fetched again once the page is back.',
  timeout: 'The change may not have been saved: the list is fetched again once the page is back.',
};

/** An error from the node about a contact, with a hint, and the field it is about. */
function contactError(err) {
  const e = withHint(err);
  if (CONTACT_HINTS[err.code]) e.hint = CONTACT_HINTS[err.code];
  let field = null;
  if (err.code === 'bad_request') field = /phone/i.test(err.message || '') ? 'phone' : 'name';
  return { e, field };
}

async function submitContact(event) {
  event.preventDefault();
  if (!conn || !state.registered) return;
  const name = trimSpace(ui.contactName.value);
  const phone = trimSpace(ui.contactPhone.value);
  clearContactError();
  const problem = contactProblem(name, phone);
  if (problem) {
    showContactError({ message: problem.message }, problem.field);
    return;
  }
  const before = state.contacts.get(name);
  ui.contactSubmit.disabled = true;
  ui.contactForm.setAttribute('aria-busy', 'true');
  try {
    const reply = await conn.request({ type: 'contact_set', name, phone });
    state.contacts.apply(reply);
    const change = before
      ? { name: reply.name, change: before.phone === reply.phone ? 'same' : 'changed', phone: reply.phone }
      : { name: reply.name, change: 'added', phone: reply.phone };
    // Cleared for the next contact, unless the user has started typing it already.
    if (trimSpace(ui.contactName.value) === name && trimSpace(ui.contactPhone.value) === phone) {
      ui.contactName.value = '';
      ui.contactPhone.value = '';
      ui.contactName.focus();
    }
    renderContacts();
    contactsPanel.say(
      change.change === 'same' ? `${change.name} already had the number ${change.phone}.` : describeContact(change, { mine: true }),
    );
    if (change.change === 'added') scheduleWho();
  } catch (err) {
    const { e, field } = contactError(err);
    showContactError(e, field);
  } finally {
    ui.contactSubmit.disabled = false;
    ui.contactForm.removeAttribute('aria-busy');
    updateContactSubmit();
  }
}

/**
 * Shows the form (the focus goes to its first field) or hides it (the focus goes back to the
 * button that opens it, when it was in the form).
 */
export function setContactFormOpen(open, { focus = true } = {}) {
  const wasInside = ui.contactForm.contains(document.activeElement);
  ui.contactForm.hidden = !open;
  ui.contactAdd.hidden = open;
  if (open && focus) ui.contactName.focus();
  if (!open) {
    ui.contactName.value = '';
    ui.contactPhone.value = '';
    clearContactError();
    updateContactSubmit();
    if (wasInside && focus) ui.contactAdd.focus();
  }
}

/** "Edit": the contact goes into the form, with the focus on its number. */
function editContact(contact) {
  setContactFormOpen(true, { focus: false });
  clearContactError();
  ui.contactName.value = contact.name;
  ui.contactPhone.value = contact.phone;
  updateContactSubmit();
  ui.contactPhone.focus();
  ui.contactPhone.select();
}

/** Deletes a contact (after the panel's confirmation). Rejects when the node refused. */
async function deleteContact(name) {
  clearContactError();
  if (!conn) throw new Error('signed out');
  try {
    const reply = await conn.request({ type: 'contact_delete', name });
    state.contacts.apply({ name: reply.name });
    renderContacts();
    contactsPanel.say(describeContact({ name, change: 'deleted' }, { mine: true }));
  } catch (err) {
    if (err.code === 'not_found') {
      // Deleted elsewhere in the meantime: the page's copy was behind.
      state.contacts.apply({ name });
      renderContacts();
    }
    showContactError(contactError(err).e);
    throw err;
  }
}

/** The form: submit, open and close (Escape too), and the submit button's words. */
export function wireContacts() {
  ui.contactForm.addEventListener('submit', submitContact);
  ui.contactAdd.addEventListener('click', () => setContactFormOpen(true));
  ui.contactClose.addEventListener('click', () => setContactFormOpen(false));
  ui.contactForm.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      // Closes the form, not the phone drawer around it.
      e.stopPropagation();
      setContactFormOpen(false);
    }
  });
  ui.contactName.addEventListener('input', () => {
    ui.contactName.removeAttribute('aria-invalid');
    updateContactSubmit();
  });
  ui.contactPhone.addEventListener('input', () => ui.contactPhone.removeAttribute('aria-invalid'));
}
