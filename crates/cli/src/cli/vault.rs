//! `airlock vault …`: store, list and remove secrets, rotate the master key.
//! Values come from stdin or a no-echo prompt, never from the command line,
//! and are never printed.

use super::Failure;
use super::args::{BackendArg, Cli, VaultArgs, VaultCommand};
use airlock::store::StoreLocation;
use airlock::vault::{
    NewVault, Passphrase, SecretScope, SecretValue, Vault, VaultError, VaultPlace,
};
use airlock::{Config, exit_code};
use serde_json::json;
use std::io::{IsTerminal, Read};

/// The variable a passphrase vault is unlocked with.
pub const PASSPHRASE_ENV: &str = "AIRLOCK_VAULT_PASSPHRASE";
/// The variable `rotate-master-key` takes the new passphrase from.
pub const NEW_PASSPHRASE_ENV: &str = "AIRLOCK_VAULT_NEW_PASSPHRASE";

impl From<VaultError> for Failure {
    fn from(e: VaultError) -> Self {
        Failure::usage(e.code(), e.to_string())
    }
}

/// The passphrase from the environment, else from a no-echo prompt when a
/// terminal is attached.
fn passphrase(variable: &str, prompt: &str) -> Result<Option<Passphrase>, Failure> {
    if let Some(value) = std::env::var_os(variable) {
        let value = value.into_string().map_err(|_| {
            Failure::usage("passphrase_invalid", format!("{variable} is not UTF-8"))
        })?;
        return Ok(Some(Passphrase::new(value)));
    }
    if std::io::stdin().is_terminal() {
        let typed = rpassword::prompt_password(prompt)
            .map_err(|e| Failure::usage("prompt_failed", format!("reading the passphrase: {e}")))?;
        return Ok(Some(Passphrase::new(typed)));
    }
    Ok(None)
}

/// Where the vault is: the shared database when the server's `store` is
/// one, else the state directory. Without `--config`, a state directory
/// whose server uses a shared database is refused rather than given a
/// vault of its own that no replica reads.
pub(crate) fn place(cli: &Cli, store: Option<&StoreLocation>) -> Result<VaultPlace, Failure> {
    match store {
        Some(StoreLocation::Postgres(settings)) => Ok(VaultPlace::Shared(settings.clone())),
        Some(StoreLocation::Sqlite) => Ok(VaultPlace::Dir(cli.state_dir.clone())),
        None => match airlock::store::shared_marker(&cli.state_dir) {
            Some(database) => Err(Failure::usage(
                "shared_store",
                format!(
                    "{}'s server keeps its vault in the shared database {database}: pass --config FILE (the server's configuration) to use that vault",
                    cli.state_dir.display()
                ),
            )),
            None => Ok(VaultPlace::Dir(cli.state_dir.clone())),
        },
    }
}

/// Opens the vault at `place`, asking for its passphrase if needed.
pub(crate) fn open(place: &VaultPlace) -> Result<Vault, Failure> {
    Vault::open_with(place.clone(), || {
        passphrase(PASSPHRASE_ENV, "vault passphrase: ")
    })
}

fn create(place: &VaultPlace, backend: Option<BackendArg>) -> Result<Vault, Failure> {
    let use_passphrase = match backend {
        Some(BackendArg::Passphrase) => true,
        Some(BackendArg::Keyring) => false,
        // A shared vault takes nothing else.
        None => {
            matches!(place, VaultPlace::Shared(_)) || std::env::var_os(PASSPHRASE_ENV).is_some()
        }
    };
    let how = if use_passphrase {
        let passphrase = passphrase(PASSPHRASE_ENV, "new vault passphrase: ")?
            .ok_or(VaultError::PassphraseRequired)?;
        NewVault::Passphrase(passphrase)
    } else {
        NewVault::Keyring
    };
    let vault = Vault::create(place.clone(), how)?;
    let backend = vault.backend();
    eprintln!(
        "airlock: created a vault in {} (master key: {}){}",
        place.describe(),
        backend.as_str(),
        if backend.survives_reboot() {
            ""
        } else {
            "; the kernel keyring is emptied at reboot, after which these secrets cannot be read: use --backend passphrase for a durable vault"
        }
    );
    Ok(vault)
}

/// The value to store: stdin when piped, else a no-echo prompt.
fn read_value(name: &str) -> Result<SecretValue, Failure> {
    let bytes = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("value for {name}: "))
            .map_err(|e| Failure::usage("prompt_failed", format!("reading the value: {e}")))?
            .into_bytes()
    } else {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(airlock::vault::MAX_SECRET_LEN as u64 + 3)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::usage("read_failed", format!("reading stdin: {e}")))?;
        bytes
    };
    SecretValue::new(bytes).map_err(|e| Failure::usage("invalid_secret", e.to_string()))
}

pub fn run(cli: &Cli, args: &VaultArgs) -> u8 {
    match run_inner(cli, args) {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}

fn run_inner(cli: &Cli, args: &VaultArgs) -> Result<u8, Failure> {
    let config = args.config.as_deref().map(Config::from_file).transpose()?;
    let place = place(cli, config.as_ref().map(Config::store))?;
    match &args.command {
        VaultCommand::Init { backend } => {
            create(&place, Some(*backend))?;
        }
        VaultCommand::Set {
            name,
            scope,
            value_on_command_line,
        } => {
            if value_on_command_line.is_some() {
                return Err(Failure::usage(
                    "secret_on_command_line",
                    "secret values are never taken from the command line (shell history and `ps` would show them): pipe the value on stdin or answer the prompt",
                ));
            }
            let scope: SecretScope =
                scope
                    .parse()
                    .map_err(|e: airlock::vault::SecretScopeError| {
                        Failure::usage("invalid_scope", e.to_string())
                    })?;
            // The value first: a bad one must not leave a new empty vault.
            let value = read_value(name)?;
            let vault = if Vault::exists(place.clone()) {
                open(&place)?
            } else {
                create(&place, None)?
            };
            vault.set(name, &scope, &value)?;
            eprintln!("airlock: stored `{name}` ({scope})");
        }
        VaultCommand::List { json } => {
            let vault = open(&place)?;
            let secrets = vault.list()?;
            if *json {
                for secret in &secrets {
                    outln!(
                        "{}",
                        json!({"name": secret.name, "scope": secret.scope.to_string(), "created": secret.created})
                    );
                }
            } else if secrets.is_empty() {
                outln!("no secrets stored");
            } else {
                for secret in &secrets {
                    outln!("{}\t{}\t{}", secret.name, secret.scope, secret.created);
                }
            }
        }
        VaultCommand::Rm { name } => {
            let vault = open(&place)?;
            if !vault.remove(name)? {
                return Err(VaultError::UnknownSecret { name: name.clone() }.into());
            }
            eprintln!("airlock: removed `{name}`");
        }
        VaultCommand::Status { json } => {
            let Some(status) = Vault::status(place.clone())? else {
                if *json {
                    outln!("{}", json!({"vault": null}));
                } else {
                    outln!(
                        "no vault in {}: `airlock vault set NAME` creates one",
                        place.describe()
                    );
                }
                return Ok(exit_code::OK);
            };
            // Whether the key is reachable right now (keyring vaults only:
            // checking a passphrase would need it).
            let unlock = match status.backend {
                airlock::vault::KeyBackend::Passphrase => None,
                _ => Some(Vault::open(place.clone(), None).map(drop)),
            };
            if *json {
                outln!(
                    "{}",
                    json!({
                        "vault": status.place,
                        "backend": status.backend.as_str(),
                        "survives_reboot": status.backend.survives_reboot(),
                        "generation": status.generation,
                        "secrets": status.secrets,
                        "key_available": unlock.as_ref().map(Result::is_ok),
                        "key_error": unlock.as_ref().and_then(|r| r.as_ref().err().map(VaultError::code)),
                    })
                );
            } else {
                outln!("vault:      {}", status.place);
                outln!(
                    "master key: {}{}",
                    status.backend.as_str(),
                    if status.backend.survives_reboot() {
                        ""
                    } else {
                        " (lost at reboot)"
                    }
                );
                outln!("generation: {}", status.generation);
                outln!("secrets:    {}", status.secrets);
                match unlock {
                    Some(Ok(())) => outln!("key:        available"),
                    Some(Err(e)) => outln!("key:        unavailable: {e}"),
                    None => outln!("key:        from {PASSPHRASE_ENV} or a prompt"),
                }
            }
        }
        VaultCommand::RotateMasterKey => {
            let mut vault = open(&place)?;
            let new = match vault.backend() {
                airlock::vault::KeyBackend::Passphrase => {
                    Some(passphrase(NEW_PASSPHRASE_ENV, "new vault passphrase: ")?.ok_or(
                        Failure::usage(
                            "passphrase_required",
                            format!("set {NEW_PASSPHRASE_ENV} or run on a terminal to give the new passphrase"),
                        ),
                    )?)
                }
                _ => None,
            };
            vault.rotate_master_key(new)?;
            eprintln!("airlock: master key rotated; every secret re-wrapped");
        }
    }
    Ok(exit_code::OK)
}
