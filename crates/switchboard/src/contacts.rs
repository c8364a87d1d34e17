//! `switchboard contacts list|set|delete`: one-shot commands on a registered user's book.

use clap::{Args, Subcommand};
use switchboard_client::Client;
use switchboard_proto::{ClientMsg, ServerMsg};

use crate::chat::describe;

/// The flags are `global` so that they may come before or after the action
/// (`contacts --name n list` and `contacts list --name n` alike). clap refuses a global
/// argument that is `required`, so `--name` and `--password` are options checked in `run`,
/// with the same exit code (2) and a clear message when one is missing.
#[derive(Args, Debug)]
pub struct ContactsArgs {
    /// The node to talk to.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_SERVER",
        default_value = "ws://127.0.0.1:8080"
    )]
    server: String,
    /// Your (registered) name.
    #[arg(long, global = true, env = "SWITCHBOARD_NAME")]
    name: Option<String>,
    /// Your password: required, since contact books belong to registered names (a guest has
    /// none).
    #[arg(long, global = true, env = "SWITCHBOARD_PASSWORD")]
    password: Option<String>,
    #[command(subcommand)]
    action: Action,
}

/// Exit code of a usage error, as clap's own.
const USAGE: i32 = 2;

#[derive(Subcommand, Debug)]
enum Action {
    /// List your contacts, sorted by name.
    List,
    /// Add a contact or change its number.
    Set { contact: String, phone: String },
    /// Remove a contact.
    Delete { contact: String },
}

/// Runs the command; returns the exit code.
pub async fn run(args: ContactsArgs) -> i32 {
    let Some(name) = args.name.as_deref() else {
        eprintln!("error: --name (or SWITCHBOARD_NAME) is required: whose contact book?");
        return USAGE;
    };
    let Some(password) = args.password.as_deref() else {
        eprintln!(
            "error: --password (or SWITCHBOARD_PASSWORD) is required: contact books belong \
             to registered names, and a guest has none"
        );
        return USAGE;
    };
    let mut client = match Client::connect_as(&args.server, name, Some(password)).await {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("! {}", describe(&e));
            return 1;
        }
    };
    let request = match args.action {
        Action::List => ClientMsg::Contacts { reff: None },
        Action::Set { contact, phone } => ClientMsg::ContactSet {
            name: contact,
            phone,
            reff: None,
        },
        Action::Delete { contact } => ClientMsg::ContactDelete {
            name: contact,
            reff: None,
        },
    };
    let code = match client.request(request).await {
        Ok(ServerMsg::Contacts { contacts, .. }) => {
            for c in contacts {
                let online = if c.online { "\tonline" } else { "" };
                println!("{}\t{}{online}", c.name, c.phone);
            }
            0
        }
        Ok(ServerMsg::Contact {
            name,
            phone: Some(p),
            ..
        }) => {
            println!("{name}\t{p}");
            0
        }
        Ok(ServerMsg::Contact {
            name, phone: None, ..
        }) => {
            println!("deleted {name}");
            0
        }
        Ok(other) => {
            eprintln!("! unexpected answer: {other:?}");
            1
        }
        Err(e) => {
            eprintln!("! {}", describe(&e));
            1
        }
    };
    let _ = client.bye().await;
    code
}
