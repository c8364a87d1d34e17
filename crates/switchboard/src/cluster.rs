//! `switchboard cluster status`: a node's view of the cluster, from its `/v1/cluster`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Members, link states, last heartbeats and Lamport clocks, as one node sees them.
    Status {
        /// The node to ask: ws://HOST:PORT, wss://HOST:PORT (TLS), or HOST:PORT (plain).
        #[arg(
            long,
            env = "SWITCHBOARD_SERVER",
            default_value = "ws://127.0.0.1:8080"
        )]
        server: String,
        /// Extra trusted certificates (PEM) for a wss:// node whose certificate comes from
        /// an authority of its own (as `chat --tls-ca` and `serve --tls-ca`).
        #[arg(long, env = "SWITCHBOARD_TLS_CA")]
        tls_ca: Option<PathBuf>,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Where to fetch the status from, parsed from `--server`.
struct Endpoint {
    tls: bool,
    /// HOST:PORT.
    hostport: String,
}

impl Endpoint {
    fn parse(server: &str) -> anyhow::Result<Endpoint> {
        let (scheme, rest) = server.split_once("://").unwrap_or(("ws", server));
        let tls = match scheme {
            "ws" | "http" => false,
            "wss" | "https" => true,
            other => {
                anyhow::bail!("--server {server}: unknown scheme {other}:// (use ws:// or wss://)")
            }
        };
        let hostport = rest.split('/').next().unwrap_or_default().to_string();
        anyhow::ensure!(!hostport.is_empty(), "--server {server}: no host");
        Ok(Endpoint { tls, hostport })
    }

    /// The host without the port, for TLS's server name.
    fn host(&self) -> &str {
        let h = match self.hostport.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => &self.hostport,
        };
        h.trim_start_matches('[').trim_end_matches(']')
    }
}

pub async fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    let ClusterCommand::Status {
        server,
        tls_ca,
        json,
    } = cmd;
    let endpoint = Endpoint::parse(&server)?;
    let body = fetch(&endpoint, tls_ca.as_deref(), "/v1/cluster").await?;
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

/// Fetches `path` over HTTP/1.1, through TLS (rustls, the roots `chat` and peers trust) for
/// a `wss://` node. The status endpoint is the only thing this command fetches, so a whole
/// HTTP client crate would be dead weight; the TLS is the same rustls the node and the
/// console client use.
async fn fetch(
    endpoint: &Endpoint,
    ca: Option<&std::path::Path>,
    path: &str,
) -> anyhow::Result<String> {
    let hostport = &endpoint.hostport;
    let tcp = tokio::net::TcpStream::connect(hostport)
        .await
        .with_context(|| format!("connecting to {hostport}"))?;
    if !endpoint.tls {
        return http_get(tcp, hostport, path).await;
    }
    let config = switchboard_server::tls::client_config(ca).context("--tls-ca")?;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(endpoint.host().to_string())
        .with_context(|| format!("{} is not a valid TLS server name", endpoint.host()))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS with {hostport}"))?;
    http_get(tls, hostport, path).await
}

/// One GET on a fresh connection (`Connection: close`): the answer's body, if it is a 200.
async fn http_get<S>(mut s: S, hostport: &str, path: &str) -> anyhow::Result<String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    s.flush().await?;
    let mut buf = Vec::new();
    // A TLS peer that closes without close_notify ends in UnexpectedEof: what arrived counts,
    // and the Content-Length check below catches a truncated body.
    if let Err(e) = s.read_to_end(&mut buf).await {
        if e.kind() != std::io::ErrorKind::UnexpectedEof || buf.is_empty() {
            return Err(e).context("reading the node's answer");
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP answer")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "the node answered: {}",
        head.lines().next().unwrap_or("")
    );
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    if let Some(n) = length {
        anyhow::ensure!(
            body.len() >= n,
            "the answer was cut short ({} of {n} bytes)",
            body.len()
        );
        return Ok(body[..n].to_string());
    }
    Ok(body.to_string())
}
