//! `switchboard`: the one binary. `serve` runs a node; `chat` is the console client.

mod chat;
mod cluster;
mod contacts;
mod serve;
mod tui;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc. A node moves many short-lived buffers between
/// threads (frames built on the store writer, written by connection tasks): glibc spent a
/// quarter of a node's CPU in `malloc_consolidate`, `unlink_chunk` and `_int_free` at 100 dm
/// pairs flat out. With mimalloc: dm about 100 k to about 130 k messages/s (four runs each), fanout
/// unchanged, idle connections 4,020 to 3,760 bytes each (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Switchboard: self-hosted chat, with a directory of who is online and where.
#[derive(Parser, Debug)]
#[command(name = "switchboard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node: WebSocket chat at /v1/ws, the web client at /, /healthz and /metrics.
    Serve(Box<serve::ServeArgs>),
    /// Chat from the console: full-screen on a terminal, line by line with --plain or a pipe.
    Chat(chat::ChatArgs),
    /// Look at a cluster.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Manage your contact book (registered names): list, set, delete.
    Contacts(contacts::ContactsArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            init_tracing();
            runtime.block_on(serve::run(*args))
        }
        Command::Cluster(cmd) => runtime.block_on(cluster::run(cmd)),
        Command::Contacts(args) => {
            let code = runtime.block_on(contacts::run(args));
            std::process::exit(code);
        }
        Command::Chat(args) => {
            let code = runtime.block_on(chat::run(args))?;
            // Exit without dropping the runtime: its stdin reader sits in a blocking read
            // that would hold the process open until the next line of input.
            std::process::exit(code);
        }
    }
}

/// Structured logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
