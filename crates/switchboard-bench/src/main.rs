//! `switchboard-bench WORKLOAD --url URL[,URL...] [--server-pid PID] ...`: see lib.rs and
//! docs/benchmarks.md.

use clap::{Parser, Subcommand};
use switchboard_bench::workloads::{self, ConnectionsArgs, DmArgs, DurableArgs, FanoutArgs};
use switchboard_bench::Target;

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-bench",
    about = "Load generator for Switchboard, IRC servers and nats-server"
)]
struct Cli {
    /// Servers: ws://HOST:PORT (Switchboard), irc://HOST:PORT or nats://HOST:PORT; several,
    /// comma-separated, spread the clients over a cluster.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// The server's process id, to report its CPU time and memory from /proc.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Client source addresses 127.0.0.1..=127.0.0.N (past the ephemeral-port limit).
    #[arg(long, global = true, default_value_t = 1)]
    sources: u8,
    /// IRC senders become operators (NAME:PASSWORD) and set +F, ngircd's relaxed flood
    /// protection.
    #[arg(long, global = true)]
    irc_oper: Option<String>,
    /// Connections opened at once.
    #[arg(long, global = true, default_value_t = 64)]
    connecting: usize,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// N members in one room, S of them sending M messages each.
    Fanout(FanoutArgs),
    /// P pairs of users exchanging direct messages.
    Dm(DmArgs),
    /// Ramp to C idle connections: connect rate and server memory per connection.
    Connections(ConnectionsArgs),
    /// Acknowledged (on-disk) messages per second from many senders (Switchboard only).
    Durable(DurableArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut target = Target::parse(&cli.url, cli.sources, cli.irc_oper.as_deref())?;
    target.connecting = cli.connecting;
    let report = match &cli.workload {
        Workload::Fanout(a) => workloads::fanout(&target, a, cli.server_pid).await?,
        Workload::Dm(a) => workloads::dm(&target, a, cli.server_pid).await?,
        Workload::Connections(a) => workloads::connections(&target, a, cli.server_pid).await?,
        Workload::Durable(a) => workloads::durable(&target, a, cli.server_pid).await?,
    };
    report.print();
    Ok(())
}
