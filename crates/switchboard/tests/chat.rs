//! `switchboard chat` as a real process: its flags, /leave and /help, plain mode when stdin
//! is a pipe, and the catch-up on direct messages after its connection is cut. (The first
//! console tests are in cli.rs; the full-screen mode is tested in src/tui/tests.rs.)

mod common;

use common::*;
use std::process::Command;

#[test]
fn chat_help_lists_its_flags() {
    help_shows(
        &["chat"],
        &[
            "--server <SERVER>",
            "--name <NAME>",
            "--password <PASSWORD>",
            "--plain",
            "--reconnect",
        ],
    );
}

#[test]
fn help_and_leave_in_plain_mode() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let mut ann = Console::start(&node, "ann", &[]);
    let mut ben = Console::start(&node, "ben", &[]);
    ann.say("/help");
    for line in [
        "commands:",
        "  /leave [ROOM]         leave a room (the current one by default)",
        "  /msg NAME [TEXT]      talk to NAME privately",
        "  /quit                 leave",
    ] {
        ann.expect(line);
    }
    ann.say("/leave");
    ann.expect("! usage: /leave ROOM");
    ann.say("/join lobby");
    ann.expect("* joined #lobby");
    ann.say("/join side");
    ann.expect("* joined #side");
    ben.say("/join lobby");
    ben.expect("* joined #lobby (2 here: ann, ben)");
    ben.say("/join side");
    ben.expect("* joined #side (2 here: ann, ben)");
    ann.expect("* ben joined #side");
    // Without a name, /leave leaves the current room; the others see it.
    ann.say("/leave");
    ann.expect("* left #side");
    ben.expect("* ann left #side");
    // What is said there no longer reaches ann; a direct message after it shows it would have.
    ben.say("only for the side room");
    ben.expect("[#side] ben: only for the side room");
    ben.say("/msg ann are you there?");
    ann.expect("[@ben] ben: are you there?");
    assert!(
        !ann.seen
            .iter()
            .any(|l| l.contains("only for the side room")),
        "{:#?}",
        ann.seen
    );
    // The room left behind is no longer current: plain text goes to the one still joined.
    ann.say("still in the lobby");
    ben.expect("[#lobby] ann: still in the lobby");
    ann.say("/leave #lobby");
    ann.expect("* left #lobby");
    ben.expect("* ann left #lobby");
    ann.say("/leave lobby");
    ann.expect("! not_member: you are not in #lobby");
    assert_eq!(ann.finish(), 0);
    assert_eq!(ben.finish(), 0);
}

#[test]
fn without_plain_a_piped_stdin_still_gets_the_plain_mode() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    // `script` gives the client a terminal for stdout; `cat` makes its stdin a pipe. So only
    // stdin being a pipe can choose the plain mode here (util-linux's script is needed).
    let inner = format!("cat | {BIN} chat --server {} --name piper", node.url());
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"]);
    let mut c = Console::spawn(cmd);
    c.say("/join pipes");
    c.expect("* joined #pipes (1 here: piper)");
    c.say("through the pipe");
    c.expect("[#pipes] piper: through the pipe");
    // The full-screen mode would have switched to the terminal's alternate screen.
    assert!(
        !c.seen.iter().any(|l| l.contains('\x1b')),
        "escape sequences in {:#?}",
        c.seen
    );
    // End of input ends the client.
    assert_eq!(c.finish(), 0);
}

#[test]
fn a_reconnecting_client_shows_each_direct_message_it_missed_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path());
    let proxy = ClientProxy::start(&node.addr);
    // An old conversation, from before the console started: not news after a reconnect.
    let mut elsewhere = Console::start(&node, "reader", &["--password", "pw"]);
    let mut oldpal = Console::start(&node, "oldpal", &[]);
    oldpal.say("/msg reader old news");
    elsewhere.expect("[@oldpal] oldpal: old news");
    assert_eq!(oldpal.finish(), 0);
    let mut reader = Console::spawn({
        let mut cmd = Command::new(BIN);
        cmd.args(["chat", "--plain", "--reconnect", "--server", &proxy.url()])
            .args(["--name", "reader", "--password", "pw"]);
        cmd
    });
    let mut writer = Console::start(&node, "writer", &[]);
    let mut at = reader.mark();
    reader.say("/msg writer hi writer");
    writer.expect("[@reader] reader: hi writer");
    writer.say("/msg reader hello back");
    reader.expect_after(&mut at, "[@writer] writer: hello back");

    // Cut while reader is signed in elsewhere too: what is said meanwhile goes to that other
    // session, not to an inbox, so the console has to fetch it from history; a conversation
    // started meanwhile included.
    proxy.cut();
    reader.expect_after(&mut at, "* reconnecting to");
    writer.say("first while cut");
    writer.say("second while cut");
    elsewhere.expect("[@writer] writer: second while cut");
    let mut stranger = Console::start(&node, "stranger", &[]);
    stranger.say("/msg reader a new conversation");
    elsewhere.expect("[@stranger] stranger: a new conversation");
    assert_eq!(elsewhere.finish(), 0);
    proxy.restore();
    reader.expect_after(&mut at, "* connected to node cli1 as reader");
    let mut stranger_at = at;
    reader.expect_after(&mut at, "[@writer] writer: first while cut");
    reader.expect_after(&mut at, "[@writer] writer: second while cut");
    reader.expect_after(&mut stranger_at, "[@stranger] stranger: a new conversation");
    at = at.max(stranger_at);

    // Cut while reader is signed in nowhere: the messages wait in reader's inbox.
    proxy.cut();
    reader.expect_after(&mut at, "* reconnecting to");
    let mut wat = writer.mark();
    writer.say("queued while cut");
    writer.expect_after(&mut wat, "* reader is offline; your message is queued");
    writer.say("queued again");
    writer.expect_after(&mut wat, "* reader is offline; your message is queued");
    proxy.restore();
    reader.expect_after(&mut at, "* connected to node cli1 as reader");
    reader.expect_after(&mut at, "[@writer] writer: queued while cut");
    reader.expect_after(&mut at, "[@writer] writer: queued again");
    writer.say("live again");
    reader.expect_after(&mut at, "[@writer] writer: live again");
    for text in [
        "reader: hi writer",
        "writer: hello back",
        "writer: first while cut",
        "writer: second while cut",
        "writer: queued while cut",
        "writer: queued again",
        "writer: live again",
        "stranger: a new conversation",
    ] {
        let n = reader.seen.iter().filter(|l| l.ends_with(text)).count();
        assert_eq!(n, 1, "{text:?} shown {n} times: {:#?}", reader.seen);
    }
    assert!(
        !reader.seen.iter().any(|l| l.contains("old news")),
        "{:#?}",
        reader.seen
    );
    assert_eq!(writer.finish(), 0);
    assert_eq!(stranger.finish(), 0);
}
