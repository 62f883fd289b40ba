//! `airlock devices`: pair browsers with the console of the running
//! server, list them, revoke them.

use super::args::Cli;
use super::serve::{ask, not_running};
use super::{Failure, open_state};
use airlock::exit_code;
use airlock_serve::operator::OperatorRequest;
use airlock_serve::{Device, Devices};
use clap::Subcommand;
use serde_json::Value;
use std::time::Duration;

/// `airlock devices`.
#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Print a one-time code that pairs a browser with the console (the
    /// server must run with `--console`).
    #[command(
        after_help = "Examples:\n  airlock devices pair\n  airlock devices pair --operator alice --expires 2m"
    )]
    Pair {
        /// The operator the device will belong to: you (the default), as
        /// the server knows you from the operator socket.
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
        /// How long the code works: at most, and by default, 5 minutes.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The paired devices (never their cookies), revoked ones included.
    #[command(after_help = "Examples:\n  airlock devices list\n  airlock devices list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device: its next request is refused, and it must pair again.
    #[command(after_help = "Examples:\n  airlock devices revoke 01JD5Y2W9X3M8Q4R6T0V7B1N2C")]
    Revoke {
        /// The device's id (`airlock devices list`).
        id: String,
    },
}

pub async fn run(cli: &Cli, command: &DevicesCommand) -> u8 {
    match devices(cli, command).await {
        Ok(()) => exit_code::OK,
        Err(failure) => failure.report(),
    }
}

fn device_failure(e: airlock_serve::DeviceError) -> Failure {
    Failure::usage(e.code(), e.to_string())
}

async fn devices(cli: &Cli, command: &DevicesCommand) -> Result<(), Failure> {
    let direct = || -> Result<Devices, Failure> { Ok(Devices::in_store(&open_state(cli)?)) };
    match command {
        DevicesCommand::Pair {
            operator,
            expires,
            json,
        } => {
            let request = OperatorRequest::DevicesPair {
                operator: operator.clone(),
                expires_secs: expires.map(|d| d.as_secs().max(1)),
            };
            let Some(answer) = ask(cli, &request).await? else {
                return Err(not_running(cli));
            };
            if *json {
                outln!("{answer}");
            } else {
                let field = |name: &str| answer[name].as_str().unwrap_or_default().to_string();
                eprintln!(
                    "airlock: open {} in the browser to pair, and enter this code before {} \
                     (it works once; the device will act as operator `{}`):",
                    field("url"),
                    field("expires"),
                    field("operator")
                );
                outln!("{}", field("code"));
            }
        }
        DevicesCommand::List { json } => {
            let list = match ask(cli, &OperatorRequest::DevicesList).await? {
                Some(answer) => answer,
                None => serde_json::to_value(direct()?.list()?)
                    .map_err(|e| Failure::usage("internal", e.to_string()))?,
            };
            let devices: Vec<Device> = serde_json::from_value(list.clone())
                .map_err(|e| Failure::usage("internal", e.to_string()))?;
            if *json {
                outln!("{list}");
            } else if devices.is_empty() {
                outln!("no paired devices: `airlock devices pair` prints a code for one");
            } else {
                for device in devices {
                    let state = device
                        .revoked
                        .map_or_else(|| "paired".to_string(), |when| format!("revoked {when}"));
                    outln!(
                        "{}  {:<16} operator {:<12} paired {}  last seen {}  {state}",
                        device.id,
                        device.label,
                        device.operator,
                        device.paired,
                        device.last_seen.as_deref().unwrap_or("never"),
                    );
                }
            }
        }
        DevicesCommand::Revoke { id } => {
            let request = OperatorRequest::DevicesRevoke { id: id.clone() };
            let revoked: Value = match ask(cli, &request).await? {
                Some(answer) => answer,
                None => serde_json::to_value(
                    direct()?
                        .revoke(id, &format!("operator:{}", whoami()))
                        .map_err(device_failure)?,
                )
                .map_err(|e| Failure::usage("internal", e.to_string()))?,
            };
            eprintln!(
                "airlock: device `{id}` ({}) revoked: its next request is refused",
                revoked["label"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Who revokes when no server answers: the state directory's owner, by uid.
fn whoami() -> String {
    format!("uid{}", airlock_serve::current_uid())
}
