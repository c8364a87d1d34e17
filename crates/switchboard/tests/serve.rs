//! `switchboard serve` as a real process: its defaults and their environment variables, as
//! `--help` shows them and as they behave, and SIGINT's notice to connected clients.
//! (The other end-to-end tests of the binary are in cli.rs and chat.rs.)

mod common;

use common::*;
use std::process::Command;
use std::time::Instant;

#[test]
fn serve_help_shows_the_defaults() {
    help_shows(
        &["serve"],
        &[
            "[env: SWITCHBOARD_LISTEN=] [default: 0.0.0.0:8080]",
            "[env: SWITCHBOARD_DATA_DIR=] [default: ./switchboard-data]",
            "[env: SWITCHBOARD_NODE_NAME=]",
        ],
    );
}

#[test]
fn serve_takes_its_listen_address_data_dir_and_name_from_the_environment() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("from-env");
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .current_dir(cwd.path())
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_DATA_DIR", &data)
        .env("SWITCHBOARD_NODE_NAME", "envnode");
    let node = Node::launch(cmd);
    assert!(node.addr.starts_with("127.0.0.1:"), "{}", node.addr);
    let mut c = Console::start(&node, "envy", &["--password", "pw"]);
    c.expect("* connected to node envnode as envy (registered)");
    assert!(
        std::fs::read_dir(&data).unwrap().next().is_some(),
        "the database is in SWITCHBOARD_DATA_DIR"
    );
    assert!(!cwd.path().join("switchboard-data").exists());
    assert_eq!(c.finish(), 0);
}

#[test]
fn serve_keeps_its_data_in_switchboard_data_and_is_named_after_the_host_by_default() {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    // The listen address comes from the environment only to stay off port 8080.
    cmd.arg("serve")
        .current_dir(cwd.path())
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env_remove("SWITCHBOARD_DATA_DIR")
        .env_remove("SWITCHBOARD_NODE_NAME");
    let node = Node::launch(cmd);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    let expected = match switchboard_proto::validate_name(host) {
        Ok(_) => host,
        Err(_) => "node1",
    };
    let mut c = Console::start(&node, "hosted", &[]);
    c.expect(&format!("* connected to node {expected} as hosted"));
    let data = cwd.path().join("switchboard-data");
    assert!(data.is_dir(), "./switchboard-data was not created");
    assert!(std::fs::read_dir(&data).unwrap().next().is_some());
    assert_eq!(c.finish(), 0);
}

#[test]
fn sigint_tells_connected_clients_why_and_they_exit() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path());
    let mut c = Console::start(&node, "listener", &[]);
    c.say("/join lounge");
    c.expect("* joined #lounge");
    node.signal("-INT");
    let (code, lines) = c.wait_exit();
    assert_eq!(code, 0, "{lines:#?}");
    let notice = "* the server is shutting down: the node was interrupted (SIGINT) and is stopping";
    assert!(lines.iter().any(|l| l == notice), "{lines:#?}");
    // The node itself stops, cleanly.
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the node did not stop on SIGINT");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
