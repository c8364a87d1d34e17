// The page's entry point: it loads the modules and hooks them up to the page's controls.
// Each part of the client is its own module, on top of the protocol client (protocol.js), the
// page's state (state.js) and the views (views.js, contacts-view.js):
//   page.js           the shared elements, state, views, connection and helpers
//   session.js        sign-in and sign-out, the node's events, and the resume after a reconnect
//   conversations.js  the sidebar's conversations, the header, joining, leaving, delivering
//   history.js        the newest page, older pages on scroll, the catch-up after a reconnect
//   online.js         who is online and who is away
//   contacts.js       the contact book: fetched, followed live, the form, deletes
//   composer.js       sending messages and the slash commands

import { load, ui } from './page.js';
import { wireSession } from './session.js';
import { wireConversations } from './conversations.js';
import { wireComposer } from './composer.js';
import { wireContacts } from './contacts.js';
import { wireHistory } from './history.js';

wireSession();
wireConversations();
wireComposer();
wireContacts();
wireHistory();

ui.signinName.value = load('switchboard.name', '') || '';
ui.signinName.focus();
