//! `airlock servers`: the hosted MCP servers of the running server.

use super::Failure;
use super::args::Cli;
use super::serve::{ask, not_running};
use airlock::exit_code;
use airlock_serve::operator::OperatorRequest;
use clap::Subcommand;
use serde_json::Value;

/// `airlock servers`.
#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// The hosted servers and the tools each serves (`SERVER.TOOL`).
    #[command(after_help = "Examples:\n  airlock servers list\n  airlock servers list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// How each hosted server stands: running or not, its process, how
    /// often it started, why it last failed.
    #[command(after_help = "Examples:\n  airlock servers status\n  airlock servers status --json")]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a hosted server again (stopping it first if it runs); its
    /// tools are listed anew and clients are told.
    #[command(after_help = "Examples:\n  airlock servers restart files")]
    Restart {
        /// The server's name.
        name: String,
    },
    /// Definitions a hosted server lists that differ from the ones pinned
    /// when it was first served (a changed description, schema or
    /// program), each as a diff; they wait for `accept` or `reject`.
    #[command(
        after_help = "Examples:\n  airlock servers changes\n  airlock servers changes --all --json"
    )]
    Changes {
        /// Decided and superseded changes too.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept a pending definition change: the new definition is pinned
    /// and served from now on.
    #[command(after_help = "Examples:\n  airlock servers accept 01JF3Q…")]
    Accept {
        /// The change's id (`airlock servers changes`).
        id: String,
    },
    /// Reject a pending definition change: the pinned definition keeps
    /// serving, and the same change is not asked again.
    #[command(after_help = "Examples:\n  airlock servers reject 01JF3Q…")]
    Reject {
        /// The change's id (`airlock servers changes`).
        id: String,
    },
}

pub async fn run(cli: &Cli, command: &ServersCommand) -> u8 {
    match servers(cli, command).await {
        Ok(()) => exit_code::OK,
        Err(failure) => failure.report(),
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

async fn servers(cli: &Cli, command: &ServersCommand) -> Result<(), Failure> {
    let request = match command {
        ServersCommand::List { .. } => OperatorRequest::ServersList,
        ServersCommand::Status { .. } => OperatorRequest::ServersStatus,
        ServersCommand::Restart { name } => OperatorRequest::ServersRestart { name: name.clone() },
        ServersCommand::Changes { all, .. } => OperatorRequest::ServersChanges { all: *all },
        ServersCommand::Accept { id } => OperatorRequest::ServersDecide {
            id: id.clone(),
            accept: true,
        },
        ServersCommand::Reject { id } => OperatorRequest::ServersDecide {
            id: id.clone(),
            accept: false,
        },
    };
    let Some(answer) = ask(cli, &request).await? else {
        return Err(not_running(cli));
    };
    match command {
        ServersCommand::List { json: true }
        | ServersCommand::Status { json: true }
        | ServersCommand::Changes { json: true, .. } => {
            outln!("{answer}");
        }
        ServersCommand::List { json: false } => {
            let list = answer.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                outln!("no hosted servers: add [[servers]] entries to airlock.toml");
            }
            for server in list {
                let tools: Vec<&str> = server["tools"]
                    .as_array()
                    .map(|t| t.iter().map(text).collect())
                    .unwrap_or_default();
                outln!(
                    "{}  {}{}  {}  tools: {}",
                    text(&server["name"]),
                    text(&server["state"]),
                    if server["pinned"] == false {
                        "  UNPINNED (pin = false)"
                    } else {
                        ""
                    },
                    text(&server["program"]),
                    if tools.is_empty() {
                        "none".to_string()
                    } else {
                        tools.join(", ")
                    }
                );
            }
        }
        ServersCommand::Status { json: false } => {
            for server in answer.as_array().cloned().unwrap_or_default() {
                outln!(
                    "{}  {}  pid {}  started {} times  {} tools{}",
                    text(&server["name"]),
                    text(&server["state"]),
                    server["pid"]
                        .as_u64()
                        .map_or_else(|| "-".to_string(), |p| p.to_string()),
                    server["starts"],
                    server["tools"],
                    server["last_error"]
                        .as_str()
                        .map(|e| format!("  last error: {e}"))
                        .unwrap_or_default()
                );
                let mounted: Vec<&str> = server["mounted"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                if !mounted.is_empty() {
                    outln!(
                        "  also visible read-only (its command's links): {}",
                        mounted.join(", ")
                    );
                }
            }
        }
        ServersCommand::Changes { json: false, all } => {
            let list = answer.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                outln!(
                    "no {}definition changes: every hosted server lists what was pinned",
                    if *all { "" } else { "pending " }
                );
            }
            for change in list {
                outln!(
                    "{}  server {}  {}  {}  seen {}{}",
                    text(&change["id"]),
                    text(&change["server"]),
                    text(&change["subject"]),
                    text(&change["status"]),
                    text(&change["seen"]),
                    change["decided_by"]
                        .as_str()
                        .map(|by| format!("  decided by {by}"))
                        .unwrap_or_default()
                );
                outln!("{}", text(&change["diff"]).trim_end());
            }
        }
        ServersCommand::Accept { .. } | ServersCommand::Reject { .. } => {
            eprintln!(
                "airlock: change {} {}: server {} {} {}",
                text(&answer["id"]),
                text(&answer["status"]),
                text(&answer["server"]),
                text(&answer["subject"]),
                if answer["status"] == "accepted" {
                    format!("now serves {}", text(&answer["new_digest"]))
                } else {
                    format!("keeps serving {}", text(&answer["old_digest"]))
                }
            );
        }
        ServersCommand::Restart { name } => {
            eprintln!(
                "airlock: server `{name}` restarted: {} tools",
                answer["tools"]
            );
        }
    }
    Ok(())
}
