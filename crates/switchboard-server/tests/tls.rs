//! TLS for clients and peers, with a certificate made for the test (rcgen).

mod common;

use std::path::PathBuf;

use common::*;
use switchboard_client::{Client, Target};

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
fn certificate(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    (c, k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_and_peers_speak_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let with_tls = |name: &'static str, peers: Vec<String>| {
        let (cert, key) = (cert.clone(), key.clone());
        move |c: &mut switchboard_server::Config| {
            clustered(name, peers)(c);
            c.tls = Some((cert, key));
            c.tls_ca = Some(c.tls.as_ref().unwrap().0.clone());
        }
    };
    let a = TestServer::start_with(with_tls("a", vec![])).await;
    let b = TestServer::start_with(with_tls("b", vec![format!("wss://{}", a.addr)])).await;

    let trust = switchboard_server::tls::client_config(Some(&cert)).unwrap();
    let wss = |s: &TestServer| format!("wss://{}/v1/ws", s.addr);
    let (mut ann, _) = Client::connect_as_tls(&wss(&a), "ann", None, Some(trust.clone()))
        .await
        .unwrap();
    let (mut bob, _) = Client::connect_as_tls(&wss(&b), "bob", None, Some(trust.clone()))
        .await
        .unwrap();
    ann.join("secure").await.unwrap();
    bob.join("secure").await.unwrap();
    // The peers link over wss://, proving their certificates against the trusted one: ann
    // sees bob, on the other node, in the room.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let who = switchboard_proto::ClientMsg::Who {
            room: Some("secure".into()),
            reff: None,
        };
        if let Ok(switchboard_proto::ServerMsg::Who { users, .. }) = ann.request(who).await {
            if users.len() == 2 {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the nodes never linked over TLS"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    ann.say(Target::Room("secure"), "over TLS").await.unwrap();
    let m = next_message(&mut bob).await;
    assert_eq!((m.from.as_str(), m.text.as_str()), ("ann", "over TLS"));

    // A plain-text client cannot talk to a TLS node, and a client that does not trust the
    // certificate is refused by its own TLS layer.
    assert!(Client::connect_as(&a.url, "plain", None).await.is_err());
    assert!(Client::connect_as(&wss(&a), "untrusting", None)
        .await
        .is_err());
}
