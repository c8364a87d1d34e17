//! `switchboard cluster status`: a node's view of the cluster, from its `/v1/cluster`.

use anyhow::Context;
use clap::Subcommand;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Members, link states, last heartbeats and Lamport clocks, as one node sees them.
    Status {
        /// The node to ask (ws://HOST:PORT or HOST:PORT).
        #[arg(
            long,
            env = "SWITCHBOARD_SERVER",
            default_value = "ws://127.0.0.1:8080"
        )]
        server: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    let ClusterCommand::Status { server, json } = cmd;
    let hostport = server
        .split_once("://")
        .map_or(server.as_str(), |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let body = http_get(&hostport, "/v1/cluster").await?;
    if json {
        println!("{body}");
        return Ok(());
    }
    let v: serde_json::Value =
        serde_json::from_str(&body).context("the node's answer is not JSON")?;
    println!(
        "node {}  {}  clock {}  backplane {}",
        v["node"].as_str().unwrap_or("?"),
        v["url"].as_str().unwrap_or("?"),
        v["clock"],
        v["backplane"].as_str().unwrap_or("mesh")
    );
    println!(
        "{:<16} {:<26} {:<11} {:>12} {:>8} {:>8} {:>6}",
        "PEER", "URL", "LINK", "HEARTBEAT", "CLOCK", "LAG", "DIALS"
    );
    for p in v["peers"].as_array().into_iter().flatten() {
        let age = p["heartbeat_age_ms"]
            .as_u64()
            .map_or("-".to_string(), |ms| format!("{ms} ms ago"));
        let lag = p["lag_ops"]
            .as_u64()
            .map_or("-".to_string(), |n| n.to_string());
        println!(
            "{:<16} {:<26} {:<11} {:>12} {:>8} {:>8} {:>6}",
            p["node"].as_str().unwrap_or("?"),
            p["url"].as_str().unwrap_or("?"),
            p["state"].as_str().unwrap_or("?"),
            age,
            p["clock"].to_string(),
            lag,
            p["attempts"].to_string(),
        );
    }
    Ok(())
}

/// A plain HTTP/1.1 GET: the status endpoint is the only thing this command fetches, so a
/// whole HTTP client crate would be dead weight.
async fn http_get(hostport: &str, path: &str) -> anyhow::Result<String> {
    let mut s = tokio::net::TcpStream::connect(hostport)
        .await
        .with_context(|| format!("connecting to {hostport}"))?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP answer")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "the node answered: {}",
        head.lines().next().unwrap_or("")
    );
    Ok(body.to_string())
}
