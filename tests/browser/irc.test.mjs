// IRC users among the others: an IRC client (written here on node's `net` from RFC 2812), a
// console user and a browser user share a room across two linked nodes, and talk privately;
// then real terminal clients from Debian exchange messages with a console user: `ii`, and
// irssi under tmux and WeeChat headless, each signing in to a registered name with SASL,
// talking with a console user and a browser user, and shown the room's earlier messages on
// joining (join playback; run.sh installs them when missing).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before } from 'node:test';

import {
  ConsoleClient,
  Node,
  closePage,
  freePort,
  joinRoom,
  launchBrowser,
  paneMessages,
  say,
  screenshot,
  signIn,
  test,
  tmpDir,
  until,
  waitForMessage,
} from './lib.mjs';

let a;
let b;
let ircPort;
let browser;
const cleanup = [];

before(async () => {
  ircPort = await freePort();
  a = await Node.cluster('a', { extra: ['--irc-listen', `127.0.0.1:${ircPort}`] });
  b = await Node.cluster('b', { peers: [a] });
  await a.waitForPeer('b', 'up');
  await b.waitForPeer('a', 'up');
  browser = await launchBrowser();
});

after(async () => {
  for (const c of cleanup) await c();
  await browser?.close();
  await b?.stop();
  await a?.stop();
});

/** A line-based IRC client: every line received is kept; PINGs are answered. */
class Irc {
  constructor(port, nick) {
    this.nick = nick;
    this.lines = [];
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.setEncoding('utf8');
    let buf = '';
    this.sock.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line.startsWith('PING ')) this.send(`PONG ${line.slice(5)}`);
        else this.lines.push(line);
      }
    });
    this.closed = new Promise((r) => this.sock.once('close', r));
  }

  send(line) {
    this.sock.write(`${line}\r\n`);
  }

  waitFor(ok, what) {
    return until(() => this.lines.find(ok), `${this.nick} to receive ${what}\n--- it got:\n${this.lines.join('\n')}`);
  }

  async register() {
    this.send(`NICK ${this.nick}`);
    this.send(`USER ${this.nick} 0 * :${this.nick}`);
    await this.waitFor((l) => / 376 /.test(l), 'the end of the MOTD');
  }

  async quit() {
    this.send('QUIT :done');
    await this.closed;
  }
}

test('an IRC user, a console user and a browser user share a room across two nodes', async () => {
  // The IRC user and the console user on node a, the browser user on node b.
  const ivy = new Irc(ircPort, 'ivy');
  cleanup.push(() => ivy.quit());
  await ivy.register();
  ivy.send('JOIN #town');
  await ivy.waitFor((l) => / 366 ivy #town /.test(l), 'the end of NAMES');
  const carol = new ConsoleClient(a, 'carol');
  cleanup.push(() => carol.close());
  await carol.waitForLine((l) => l.startsWith('* connected to node a as carol'));
  carol.send('/join town');
  await carol.waitForLine((l) => l.startsWith('* joined #town'));
  const alice = await signIn(browser, b, 'alice');
  await joinRoom(alice, 'town');
  // ivy sees the others arrive, as JOINs.
  await ivy.waitFor((l) => l === ':carol!carol@switchboard JOIN :#town', 'carol joining');
  await ivy.waitFor((l) => l === ':alice!alice@switchboard JOIN :#town', 'alice joining');

  // One conversation: each speaks once the last message has arrived.
  ivy.send('PRIVMSG #town :hello from IRC');
  await waitForMessage(alice, 'hello from IRC', 'ivy');
  await say(alice, 'hello from the browser');
  await ivy.waitFor((l) => l === ':alice!alice@switchboard PRIVMSG #town :hello from the browser', 'alice');
  carol.send('hello from the console');
  await ivy.waitFor((l) => l === ':carol!carol@switchboard PRIVMSG #town :hello from the console', 'carol');
  await waitForMessage(alice, 'hello from the console', 'carol');
  const town = ['ivy: hello from IRC', 'alice: hello from the browser', 'carol: hello from the console'];
  assert.deepEqual(
    (await paneMessages(alice)).map((m) => `${m.from}: ${m.text}`),
    town,
  );
  for (const line of town) await carol.waitForLine(`[#town] ${line}`);
  // The IRC user never hears its own line back (no echo-message asked for).
  assert.equal(ivy.lines.filter((l) => l.includes('hello from IRC')).length, 0);

  // Privately: the browser user writes to ivy, ivy answers with a PRIVMSG to the nick.
  carol.send('/msg ivy psst, from the console');
  await ivy.waitFor((l) => l === ':carol!carol@switchboard PRIVMSG ivy :psst, from the console', 'the direct message');
  ivy.send('PRIVMSG alice :just between us');
  await alice.waitForSelector('[data-testid=dm-list] [data-conv="@alice:ivy"]');
  await alice.click('[data-testid=dm-list] [data-conv="@alice:ivy"]');
  await waitForMessage(alice, 'just between us', 'ivy');
  await say(alice, 'agreed');
  await ivy.waitFor((l) => l === ':alice!alice@switchboard PRIVMSG ivy :agreed', 'the answer');
  // WHOIS sees alice of node b in #town.
  ivy.send('WHOIS alice');
  await ivy.waitFor((l) => / 319 ivy alice :#town$/.test(l), 'alice in #town');
  await screenshot(alice, 'irc-dm');
  await closePage(alice);
});

test('a real terminal IRC client (ii) joins a room and talks with a console user', async () => {
  const dir = tmpDir('switchboard-ii-');
  const ii = spawn('ii', ['-s', '127.0.0.1', '-p', String(ircPort), '-n', 'terminal', '-i', dir], {
    stdio: 'ignore',
  });
  cleanup.push(async () => {
    if (ii.exitCode === null) {
      const gone = new Promise((r) => ii.once('exit', r));
      ii.kill('SIGTERM');
      await gone;
    }
  });
  const server = path.join(dir, '127.0.0.1');
  const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
  await until(() => fs.existsSync(path.join(server, 'in')), 'ii to open its input');
  await until(() => / 376 /.test(read(path.join(server, 'out'))) || /End of \/MOTD/.test(read(path.join(server, 'out'))), 'ii to be welcomed');
  fs.appendFileSync(path.join(server, 'in'), '/j #shell\n');
  const chan = path.join(server, '#shell');
  await until(() => fs.existsSync(path.join(chan, 'in')), 'ii to join #shell');

  const dan = new ConsoleClient(b, 'dan');
  cleanup.push(() => dan.close());
  await dan.waitForLine((l) => l.startsWith('* connected to node b as dan'));
  dan.send('/join shell');
  await dan.waitForLine((l) => l.startsWith('* joined #shell') && l.includes('terminal'));
  fs.appendFileSync(path.join(chan, 'in'), 'hello from ii\n');
  await dan.waitForLine('[#shell] terminal: hello from ii');
  dan.send('hello terminal');
  await until(() => read(path.join(chan, 'out')).includes('<dan> hello terminal'), `ii to print dan's line:\n${read(path.join(chan, 'out'))}`);
  dan.send('/msg terminal a word in private');
  await until(
    () => read(path.join(server, 'dan', 'out')).includes('<dan> a word in private'),
    'ii to print the direct message',
  );
});

test('irssi under tmux signs in with SASL, joins a room, talks with a console user and a browser user, and is shown history', async () => {
  // The name is registered from the console first.
  const owner = new ConsoleClient(a, 'Iris', { password: 'iris-pw' });
  await owner.waitForLine((l) => l.startsWith('* connected to node a as Iris (registered)'));
  await owner.close();

  const home = tmpDir('switchboard-irssi-');
  const logs = path.join(home, 'logs');
  fs.writeFileSync(
    path.join(home, 'config'),
    `servers = ( { address = "127.0.0.1"; chatnet = "sb"; port = "${ircPort}"; use_tls = "no"; autoconnect = "yes"; } );
chatnets = { sb = { type = "IRC"; sasl_mechanism = "PLAIN"; sasl_username = "iris"; sasl_password = "iris-pw"; }; };
channels = ( { name = "#term"; chatnet = "sb"; autojoin = "yes"; } );
settings = {
  core = { real_name = "Iris"; user_name = "iris"; nick = "iris"; };
  "fe-common/core" = { autolog = "yes"; autolog_path = "${logs}/$tag/$0.log"; };
};
`,
  );
  const session = `switchboard-irssi-${process.pid}`;
  const tmux = (...args) => spawnSync('tmux', args, { encoding: 'utf8' });
  const started = tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '40', `irssi --home=${home}`);
  assert.equal(started.status, 0, started.stderr);
  cleanup.push(async () => tmux('kill-session', '-t', session));
  const screen = () => tmux('capture-pane', '-p', '-t', session).stdout;
  const log = () => {
    const f = path.join(logs, 'sb', '#term.log');
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
  };
  // SASL signs irssi in as the registered Iris, and it joins #term by itself.
  await until(() => log().includes('Iris [Iris@switchboard] has joined #term'), `irssi to join #term:\n${screen()}`);

  const erik = new ConsoleClient(b, 'erik');
  cleanup.push(() => erik.close());
  await erik.waitForLine((l) => l.startsWith('* connected to node b as erik'));
  erik.send('/join term');
  await erik.waitForLine((l) => l.startsWith('* joined #term') && l.includes('Iris'));
  tmux('send-keys', '-t', session, '/msg #term hello from irssi', 'Enter');
  await erik.waitForLine('[#term] Iris: hello from irssi');
  erik.send('hello Iris');
  // irssi logs a nick with its mode column: `< erik> hello Iris`.
  await until(() => /<.erik> hello Iris/.test(log()), "irssi to show erik's line");
  // A browser user on node b joins the same conversation.
  const page = await signIn(browser, b, 'webby');
  cleanup.push(() => closePage(page));
  await joinRoom(page, 'term');
  await say(page, 'hello from the web');
  await until(() => /<.webby> hello from the web/.test(log()), "irssi to show the browser user's line");
  tmux('send-keys', '-t', session, '/msg #term hi webby', 'Enter');
  await waitForMessage(page, 'hi webby', 'Iris');
  await erik.waitForLine('[#term] Iris: hi webby');
  // A WHOIS from irssi.
  tmux('send-keys', '-t', session, '/whois erik', 'Enter');
  await until(() => screen().includes('erik [erik@switchboard]'), `irssi to show the WHOIS:\n${screen()}`);
  // History: irssi cannot ask for it (no draft/chathistory), so joining again plays back the
  // room's latest lines, erik's among them, once each.
  tmux('send-keys', '-t', session, '/part #term', 'Enter');
  await until(() => /has left #term/.test(log()), `irssi to leave #term:\n${screen()}`);
  tmux('send-keys', '-t', session, '/join #term', 'Enter');
  const times = (re) => (log().match(re) || []).length;
  await until(() => times(/hello Iris/g) === 2 && times(/hello from irssi/g) === 2, `irssi to replay #term:\n${log()}`);
});

test('WeeChat signs in with SASL, is shown what was said before it joined, and talks with a console user and a browser user', async () => {
  // A registered name, and a room where something was said before WeeChat came (on node a,
  // WeeChat's node, so it is in that node's store when WeeChat joins).
  const owner = new ConsoleClient(a, 'Wendy', { password: 'wendy-pw' });
  await owner.waitForLine((l) => l.startsWith('* connected to node a as Wendy (registered)'));
  await owner.close();
  const fay = new ConsoleClient(a, 'fay');
  cleanup.push(() => fay.close());
  await fay.waitForLine((l) => l.startsWith('* connected to node a as fay'));
  fay.send('/join weechat');
  await fay.waitForLine((l) => l.startsWith('* joined #weechat'));
  fay.send('said before WeeChat came');
  await fay.waitForLine('[#weechat] fay: said before WeeChat came');

  // weechat-headless, its logger writing every line at once, its FIFO to type into.
  const dir = tmpDir('switchboard-weechat-');
  const setup = [
    '/set logger.file.flush_delay 0',
    `/server add sb 127.0.0.1/${ircPort} -notls`,
    '/set irc.server.sb.nicks wendy',
    '/set irc.server.sb.sasl_mechanism plain',
    '/set irc.server.sb.sasl_username wendy',
    '/set irc.server.sb.sasl_password wendy-pw',
    '/set irc.server.sb.autojoin #weechat',
    '/connect sb',
  ].join(';');
  const weechat = spawn('weechat-headless', ['--dir', dir, '-P', 'irc,logger,fifo', '-r', setup], {
    stdio: 'ignore',
  });
  cleanup.push(async () => {
    if (weechat.exitCode === null) {
      const gone = new Promise((r) => weechat.once('exit', r));
      weechat.kill('SIGTERM');
      await gone;
    }
  });
  const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
  const log = () => read(path.join(dir, 'logs', 'irc.sb.#weechat.weechatlog'));
  const server = () => read(path.join(dir, 'logs', 'irc.server.sb.weechatlog'));
  // SASL makes it the registered Wendy; it joins, and the join plays back the room's history
  // (WeeChat 3.8 has no CHATHISTORY of its own): the earlier line, after the join, once.
  await until(
    () => log().includes('\tfay\tsaid before WeeChat came'),
    `WeeChat to show the earlier line:\n${log()}\n--- server buffer:\n${server()}`,
  );
  assert.match(server(), /SASL authentication successful/);
  const joined = log();
  assert.ok(joined.indexOf('Wendy (Wendy@switchboard) has joined #weechat') >= 0, joined);
  assert.ok(
    joined.indexOf('has joined #weechat') < joined.indexOf('said before WeeChat came'),
    `the history comes after the join:\n${joined}`,
  );

  // A live line from the console, then WeeChat's own (typed into its FIFO).
  await fay.waitForLine('* Wendy joined #weechat');
  fay.send('said while WeeChat is here');
  await until(() => log().includes('\tfay\tsaid while WeeChat is here'), `WeeChat to show the live line:\n${log()}`);
  await until(() => fs.readdirSync(dir).some((f) => f.startsWith('weechat_fifo')), 'the WeeChat FIFO');
  const fifo = path.join(dir, fs.readdirSync(dir).find((f) => f.startsWith('weechat_fifo')));
  // A browser user on node b in the same room: WeeChat shows their line, they see WeeChat's.
  const page = await signIn(browser, b, 'wanda');
  cleanup.push(() => closePage(page));
  await joinRoom(page, 'weechat');
  await say(page, 'said from the web');
  await until(() => log().includes('\twanda\tsaid from the web'), `WeeChat to show the browser's line:\n${log()}`);
  fs.appendFileSync(fifo, '*/msg -server sb #weechat hello from weechat\n');
  await fay.waitForLine('[#weechat] Wendy: hello from weechat');
  await waitForMessage(page, 'hello from weechat', 'Wendy');
  const all = log();
  assert.equal(all.split('said before WeeChat came').length - 1, 1, all);
  assert.equal(all.split('said while WeeChat is here').length - 1, 1, all);
});
