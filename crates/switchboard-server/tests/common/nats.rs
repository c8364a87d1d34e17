//! A real nats-server with JetStream for the backplane tests: started on a free port with
//! its own store directory, killed on drop, and restartable on the same port and store (a
//! NATS outage and its recovery).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `nats-server` package puts the binary; `NATS_SERVER` overrides it.
fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = ["/usr/sbin".into(), "/usr/bin".into()]
        .into_iter()
        .chain(std::env::split_paths(&path));
    for dir in dirs {
        let p: PathBuf = dir.join("nats-server");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "nats-server is not installed: the NATS backplane tests need it \
         (apt-get install -y nats-server, or set NATS_SERVER to its path)"
    );
}

pub struct NatsServer {
    pub port: u16,
    store: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server with JetStream on a free port and waits until it accepts connections.
    pub async fn start() -> NatsServer {
        NatsServer::start_with(&[]).await
    }

    /// [`NatsServer::start`] with more arguments (e.g. `--user`, `--pass`, `--auth`).
    pub async fn start_with(args: &[&str]) -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = NatsServer {
            port,
            store: tempfile::tempdir().unwrap(),
            args: args.iter().map(|a| a.to_string()).collect(),
            child: None,
        };
        s.spawn().await;
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let child = Command::new(binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "nats-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server at once (SIGKILL): an outage, not a shutdown.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same store.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
