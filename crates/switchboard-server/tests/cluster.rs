//! Peer links between real nodes on loopback: the full mesh from one seed each, the
//! cluster secret, heartbeats, and nodes leaving and coming back.

mod common;

use std::time::Duration;

use common::*;

fn url(s: &TestServer) -> String {
    format!("ws://{}", s.addr)
}

fn all_up(
    names: &'static [&'static str],
) -> impl Fn(&std::collections::BTreeMap<String, String>) -> bool {
    move |v| {
        names
            .iter()
            .all(|n| v.get(*n).map(String::as_str) == Some("up"))
            && v.len() == names.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_given_one_peer_each_form_a_full_mesh() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let b = TestServer::start_with(clustered("b", vec![url(&a)])).await;
    let c = TestServer::start_with(clustered("c", vec![url(&b)])).await;
    // a was given no peer and c only b, yet everyone links to everyone.
    wait_view(&a, "a links to b and c", all_up(&["b", "c"])).await;
    wait_view(&b, "b links to a and c", all_up(&["a", "c"])).await;
    wait_view(&c, "c links to a and b", all_up(&["a", "b"])).await;
    // Heartbeats keep flowing: the links stay up well past the failure timeout.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    wait_view(&c, "links stay up", all_up(&["a", "b"])).await;
    let (_, body) = http_get(c.addr, "/v1/cluster").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["node"], "c");
    for p in v["peers"].as_array().unwrap() {
        assert!(p["heartbeat_age_ms"].as_u64().unwrap() < 600, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_secret_is_never_admitted() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let intruder = TestServer::start_with(|c| {
        clustered("intruder", vec![url(&a)])(c);
        c.cluster_secret = Some("not-the-right-secret".into());
    })
    .await;
    let b = TestServer::start_with(clustered("b", vec![url(&a)])).await;
    wait_view(&a, "a links to b", all_up(&["b"])).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let view = cluster_view(&a).await;
    assert!(!view.contains_key("intruder"), "{view:?}");
    assert!(cluster_view(&intruder).await.is_empty());
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_goes_away_is_marked_down_and_relinks_when_it_returns() {
    let a = TestServer::start_with(clustered("a", vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    let b = TestServer::start_in(dir.path(), clustered("b", vec![url(&a)])).await;
    let b_addr = b.addr.to_string();
    wait_view(&a, "a links to b", all_up(&["b"])).await;
    b.stop("restart").await;
    wait_view(&a, "b is down", |v| {
        v.get("b").map(String::as_str) == Some("down")
    })
    .await;
    // b comes back on its address without being told about a: a re-dials it.
    let b = TestServer::start_at(&b_addr, dir.path(), clustered("b", vec![])).await;
    wait_view(&a, "b is back", all_up(&["b"])).await;
    wait_view(&b, "b sees a", all_up(&["a"])).await;
}
