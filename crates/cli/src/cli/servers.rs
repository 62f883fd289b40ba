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
    };
    let Some(answer) = ask(cli, &request).await? else {
        return Err(not_running(cli));
    };
    match command {
        ServersCommand::List { json: true } | ServersCommand::Status { json: true } => {
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
                    "{}  {}  {}  tools: {}",
                    text(&server["name"]),
                    text(&server["state"]),
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
        ServersCommand::Restart { name } => {
            eprintln!(
                "airlock: server `{name}` restarted: {} tools",
                answer["tools"]
            );
        }
    }
    Ok(())
}
