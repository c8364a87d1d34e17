// The contacts panel's view: the rows of a registered user's book (or the guests' notice), the
// in-row delete confirmation, and the status line that reads changes out. The requests and the
// form are contacts.js's. Like views.js, everything from the network goes in as text.

import { sameName } from './state.js';
import { avatar, el } from './views.js';

/**
 * The contacts panel of the sidebar: a registered user's book, sorted by name, each contact with
 * its number and whether a user of that name is online (then the name opens a conversation);
 * "Edit" puts the contact in the form below the list, "Delete" asks first, in the row itself.
 * The list is rebuilt on each change, and the focus is put back on the same control of the same
 * contact, so a refresh in the background never takes the keyboard's place away.
 *
 * `refs`: the section's elements; `actions`: `open(name)`, `edit(contact)`, `remove(name)` (a
 * promise; the row stays until it settles).
 */
export class ContactsPanel {
  constructor(refs, actions) {
    this.refs = refs;
    this.actions = actions;
    /** The name of the contact whose deletion is being confirmed, or null. */
    this.confirming = null;
    /** The name of the contact being deleted (request in flight), or null. */
    this.deleting = null;
    this.book = null;
    this.me = '';
    this.statusTimer = null;
  }

  /** Shows the book (`registered` true), or the notice that guests have no book. */
  render(book, { registered, me }) {
    const { section, guest, body, list, count } = this.refs;
    this.book = book;
    this.me = me || '';
    section.dataset.state = !registered ? 'guest' : book.loaded ? 'ready' : 'loading';
    guest.hidden = registered;
    body.hidden = !registered;
    if (!registered) {
      count.textContent = '';
      list.replaceChildren();
      return;
    }
    const contacts = book.list();
    count.textContent = contacts.length ? String(contacts.length) : '';
    if (this.confirming !== null && !book.get(this.confirming)) this.confirming = null;
    // Where the focus is, to put it back on the same control once the rows are rebuilt.
    const focusKey = list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    if (!book.loaded) {
      list.replaceChildren(el('li', { className: 'none muted', text: 'Loading…' }));
    } else if (!contacts.length) {
      list.replaceChildren(el('li', { className: 'none muted', text: 'No contacts yet.', attrs: { 'data-testid': 'contacts-empty' } }));
    } else {
      list.replaceChildren(...contacts.map((c) => this.row(c)));
    }
    if (focusKey) {
      const again = [...list.querySelectorAll('[data-focus-key]')].find((n) => n.dataset.focusKey === focusKey);
      if (again) again.focus();
      else this.refs.name.focus();
    }
  }

  /** Re-renders with the same book. */
  refresh() {
    if (this.book) this.render(this.book, { registered: true, me: this.me });
  }

  row(c) {
    const online = c.online && !sameName(c.name, this.me);
    const li = el('li', {
      className: `contact${online ? ' online' : ''}`,
      attrs: { 'data-testid': 'contact', 'data-name': c.name, 'data-online': String(Boolean(c.online)) },
    });
    // The name and whether they are online on the first line, the number under them.
    const state = c.online
      ? el('span', { className: 'contact-online', text: 'online', attrs: { 'data-testid': 'contact-online' } })
      : el('span', { className: 'visually-hidden', text: ' offline' });
    const who = el(
      'span',
      { className: 'contact-who' },
      el(
        'span',
        { className: 'contact-line' },
        el('span', { className: 'contact-name', text: c.name, attrs: { title: c.name, 'data-testid': 'contact-name' } }),
        state,
      ),
      el('span', { className: 'contact-phone', text: c.phone, attrs: { 'data-testid': 'contact-phone' } }),
    );
    let main;
    if (online) {
      main = el(
        'button',
        {
          className: 'contact-main',
          attrs: { type: 'button', title: `Message ${c.name}`, 'data-testid': 'contact-open', 'data-focus-key': `open:${c.name}` },
        },
        avatar(c.name, 'small'),
        who,
        el('span', { className: 'visually-hidden', text: ', send a direct message' }),
      );
      main.addEventListener('click', () => this.actions.open(c.name));
    } else {
      main = el('div', { className: 'contact-main' }, avatar(c.name, 'small'), who);
    }
    li.append(main);

    if (this.confirming === c.name) {
      li.append(this.confirmation(c));
      return li;
    }
    const edit = el(
      'button',
      {
        className: 'contact-action',
        attrs: { type: 'button', title: `Change the number of ${c.name}`, 'data-testid': 'contact-edit', 'data-focus-key': `edit:${c.name}` },
      },
      el('span', { text: '✎', attrs: { 'aria-hidden': 'true' } }),
      el('span', { className: 'visually-hidden', text: `Change the number of ${c.name}` }),
    );
    edit.addEventListener('click', () => this.actions.edit(c));
    const del = el(
      'button',
      {
        className: 'contact-action danger',
        attrs: { type: 'button', title: `Delete ${c.name}`, 'data-testid': 'contact-delete', 'data-focus-key': `delete:${c.name}` },
      },
      el('span', { text: '×', attrs: { 'aria-hidden': 'true' } }),
      el('span', { className: 'visually-hidden', text: `Delete ${c.name}` }),
    );
    del.addEventListener('click', () => this.askDelete(c.name));
    li.append(el('span', { className: 'contact-actions' }, edit, del));
    return li;
  }

  /** "Delete Bea? [Delete] [Cancel]" in place of the row's buttons; Escape cancels. */
  confirmation(c) {
    const busy = this.deleting === c.name;
    const question = el('span', { className: 'confirm-question', text: busy ? `Deleting ${c.name}…` : `Delete ${c.name}?` });
    const yes = el('button', {
      className: 'danger-button',
      text: 'Delete',
      attrs: { type: 'button', 'data-testid': 'contact-delete-confirm', 'data-focus-key': `confirm:${c.name}`, disabled: busy },
    });
    const no = el('button', {
      text: 'Cancel',
      attrs: { type: 'button', 'data-testid': 'contact-delete-cancel', 'data-focus-key': `cancel:${c.name}`, disabled: busy },
    });
    const box = el('div', { className: 'confirm', attrs: { role: 'group', 'aria-label': `Delete ${c.name}?`, 'data-testid': 'contact-confirm' } }, question, yes, no);
    yes.addEventListener('click', () => this.confirmDelete(c.name));
    no.addEventListener('click', () => this.cancelDelete(c.name));
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        // Not the drawer's Escape: only the question goes away.
        e.stopPropagation();
        this.cancelDelete(c.name);
      }
    });
    return box;
  }

  focus(key) {
    const node = [...this.refs.list.querySelectorAll('[data-focus-key]')].find((n) => n.dataset.focusKey === key);
    if (node) node.focus();
    return Boolean(node);
  }

  askDelete(name) {
    this.confirming = name;
    this.refresh();
    // The harmless answer has the focus: Enter twice does not delete by accident.
    this.focus(`cancel:${name}`);
  }

  cancelDelete(name) {
    this.confirming = null;
    this.refresh();
    this.focus(`delete:${name}`);
  }

  async confirmDelete(name) {
    // The row that takes the focus once this one is gone: the next one, else the previous one.
    const names = this.book ? this.book.list().map((c) => c.name) : [];
    const i = names.indexOf(name);
    const neighbour = names[i + 1] ?? names[i - 1] ?? null;
    this.deleting = name;
    this.refresh();
    try {
      await this.actions.remove(name);
    } catch {
      // The error is shown by whoever made the request; the row stays.
    } finally {
      this.deleting = null;
    }
    const gone = !this.book || !this.book.get(name);
    if (gone) this.confirming = null;
    this.refresh();
    if (!gone) this.focus(`cancel:${name}`);
    else if (!(neighbour && (this.focus(`delete:${neighbour}`) || this.focus(`open:${neighbour}`)))) this.refs.name.focus();
  }

  /** A short line about the latest change, read out by the status region, gone after a while. */
  say(text) {
    const { status } = this.refs;
    clearTimeout(this.statusTimer);
    status.textContent = text;
    this.statusTimer = setTimeout(() => {
      status.textContent = '';
    }, 15000);
  }

  clearStatus() {
    clearTimeout(this.statusTimer);
    this.refs.status.textContent = '';
  }
}
