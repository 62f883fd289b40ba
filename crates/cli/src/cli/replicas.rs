//! `airlock replicas`: the replicas of a shared store and their signed
//! statements, and the key an operator registers for this one.

use super::Failure;
use super::args::Cli;
use super::serve::{ask, not_running};
use airlock::exit_code;
use airlock_serve::operator::OperatorRequest;
use clap::Subcommand;
use serde_json::Value;

/// `airlock replicas`.
#[derive(Debug, Subcommand)]
pub enum ReplicasCommand {
    /// Every replica of the shared store: its signed statement (version,
    /// binary, configuration and policy digests, sandbox, strict egress,
    /// tools) and whether it verifies under `[fleet]`.
    #[command(after_help = "Examples:\n  airlock replicas list\n  airlock replicas list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// This state directory's public key (its `host.pub`, made on first
    /// use), to register under `[fleet.replicas]`.
    #[command(after_help = "Examples:\n  airlock --state-dir /var/lib/airlock replicas key")]
    Key,
}

pub async fn run(cli: &Cli, command: &ReplicasCommand) -> u8 {
    match replicas(cli, command).await {
        Ok(()) => exit_code::OK,
        Err(failure) => failure.report(),
    }
}

/// A string of a replica's row, with anything a terminal would act on or
/// hide written as `\u{…}` (rows are whatever a database writer put there).
fn text(value: &Value) -> String {
    airlock_serve::definitions::visible(value.as_str().unwrap_or_default())
}

async fn replicas(cli: &Cli, command: &ReplicasCommand) -> Result<(), Failure> {
    let json = match command {
        ReplicasCommand::Key => {
            airlock::store::private_dir(&cli.state_dir)?;
            let key = airlock::attest::HostKey::open_or_create(&cli.state_dir)?;
            outln!("{}", hex::encode(key.verifying_key().as_bytes()));
            return Ok(());
        }
        ReplicasCommand::List { json } => *json,
    };
    let Some(answer) = ask(cli, &OperatorRequest::ReplicasList).await? else {
        return Err(not_running(cli));
    };
    if json {
        outln!("{answer}");
        return Ok(());
    }
    for replica in answer.as_array().cloned().unwrap_or_default() {
        let verdict = match replica["verified"].as_bool() {
            Some(true) => "verified".to_string(),
            Some(false) => "NOT VERIFIED".to_string(),
            None => "unchecked (no [fleet] table)".to_string(),
        };
        outln!("{}  {verdict}", text(&replica["replica"]));
        let statement = &replica["statement"];
        if statement.is_object() {
            let sandbox = &statement["sandbox"];
            outln!(
                "  airlock {}  binary {}  published {}",
                text(&statement["version"]),
                text(&statement["binary"]),
                text(&replica["published"])
            );
            outln!(
                "  config {}  policies {}",
                text(&statement["config"]),
                text(&statement["policies"])
            );
            outln!(
                "  sandbox: bubblewrap {}, user namespaces {}, seccomp {}; strict egress {}; {} tools",
                sandbox["bubblewrap"],
                sandbox["user_namespaces"],
                sandbox["seccomp"],
                statement["strict_egress"],
                statement["tools"]
                    .as_object()
                    .map_or(0, serde_json::Map::len)
            );
        }
        for failure in replica["failures"].as_array().into_iter().flatten() {
            outln!(
                "  {}: {}",
                text(&failure["code"]),
                text(&failure["message"])
            );
        }
    }
    Ok(())
}
