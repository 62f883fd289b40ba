//! `airlock journal` and `airlock attest`: verify the journal (chain and
//! signed tree heads), read it, export its head, and prove single
//! executions.

use super::args::{AttestCommand, Cli, JournalCommand};
use super::serve::ask;
use super::{Failure, open_state};
use airlock::attest::{
    PUBLIC_KEY_FILE, Proof, attestation_in, egress_digest, read_public_key, sha256_hex,
};
use airlock::exit_code;
use airlock::journal::head::TreeHead;
use airlock::journal::{Cadence, Entry, JournalStore, verdict};
use airlock_serve::operator::OperatorRequest;
use ed25519_dalek::VerifyingKey;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// `journal verify` and `attest verify` exit 1 when what they check fails.
const BROKEN: u8 = 1;

/// Through a running server's operator socket when one answers, else the
/// state directory's database.
pub async fn run_journal(cli: &Cli, command: &JournalCommand) -> u8 {
    journal(cli, command).await.unwrap_or_else(Failure::report)
}

async fn journal(cli: &Cli, command: &JournalCommand) -> Result<u8, Failure> {
    match command {
        JournalCommand::Verify { key, since, json } => {
            let since = since.as_deref().map(read_head).transpose()?;
            let verdict = verify_journal(cli, key.as_deref(), since).await?;
            let valid = verdict["valid"] == json!(true);
            if *json {
                outln!("{verdict}");
            } else if valid {
                print_verdict(&verdict);
            } else if let Some(message) = verdict["message"].as_str() {
                eprintln!("airlock: journal_broken: {message}");
            }
            if !*json {
                print_replicas(&verdict);
            }
            if key.is_none() {
                eprintln!(
                    "airlock: note: trusted {} beside the journal: that proves nothing against whoever can write {}. Keep a copy of it and `journal head --export` elsewhere, and verify with --key and --since.",
                    PUBLIC_KEY_FILE,
                    cli.state_dir.display()
                );
            }
            Ok(if valid { exit_code::OK } else { BROKEN })
        }
        JournalCommand::Tail { count, json } => {
            let entries: Vec<TailEntry> =
                match ask(cli, &OperatorRequest::JournalTail { count: *count }).await? {
                    Some(answer) => serde_json::from_value(answer)
                        .map_err(|e| Failure::usage("operator_socket_failed", e.to_string()))?,
                    None => open_state(cli)?
                        .tail(*count)?
                        .into_iter()
                        .map(|entry| TailEntry {
                            entry,
                            replica: None,
                        })
                        .collect(),
                };
            for TailEntry { entry, replica } in entries {
                if *json {
                    let mut line = entry_json(&entry);
                    if let Some(replica) = &replica {
                        line["replica"] = json!(replica);
                    }
                    outln!("{line}");
                } else {
                    let payload: String = entry.payload.chars().take(160).collect();
                    let replica = replica.map(|r| format!("{r:<10} ")).unwrap_or_default();
                    outln!(
                        "{replica}{:>6}  {}  {:<18} {payload}",
                        entry.seq,
                        entry.time,
                        entry.kind
                    );
                }
            }
            Ok(exit_code::OK)
        }
        JournalCommand::Head { export } => {
            let head: Option<TreeHead> = match ask(cli, &OperatorRequest::JournalHead).await? {
                Some(answer) => serde_json::from_value(answer)
                    .map_err(|e| Failure::usage("operator_socket_failed", e.to_string()))?,
                None => open_state(cli)?.heads()?.pop(),
            };
            let head = head.ok_or_else(|| {
                Failure::usage(
                    "journal_not_sealed",
                    "the journal has no signed tree head yet: one is signed as soon as anything is journaled",
                )
            })?;
            let text = serde_json::to_string_pretty(&head).unwrap_or_default();
            match export {
                Some(file) => {
                    std::fs::write(file, format!("{text}\n")).map_err(|e| {
                        Failure::usage(
                            "write_failed",
                            format!("cannot write {}: {e}", file.display()),
                        )
                    })?;
                    outln!(
                        "head of {} entries written to {}: keep it off this machine",
                        head.size,
                        file.display()
                    );
                }
                None => outln!("{text}"),
            }
            Ok(exit_code::OK)
        }
    }
}

/// The verdict from the running server (same check, its database) or
/// from the state directory's.
async fn verify_journal(
    cli: &Cli,
    key: Option<&Path>,
    since: Option<TreeHead>,
) -> Result<Value, Failure> {
    let trusted = key.map(read_public_key).transpose()?;
    let request = OperatorRequest::JournalVerify {
        key: trusted.map(|key| hex::encode(key.as_bytes())),
        since: since.clone(),
    };
    if let Some(answer) = ask(cli, &request).await? {
        return Ok(answer);
    }
    let trusted = match trusted {
        Some(key) => key,
        None => default_key(cli)?,
    };
    let result = open_state(cli)?.audit(&trusted, since.as_ref(), &Cadence::default())?;
    Ok(verdict(&result))
}

/// A journal entry as `journal tail` shows it: with a shared store, every
/// replica's entries come merged, each naming its replica.
#[derive(serde::Deserialize)]
struct TailEntry {
    #[serde(flatten)]
    entry: Entry,
    #[serde(default)]
    replica: Option<String>,
}

/// With a shared store: one line per replica's log.
fn print_replicas(verdict: &Value) {
    for replica in verdict["replicas"].as_array().into_iter().flatten() {
        let name = replica["replica"].as_str().unwrap_or_default();
        if replica["valid"] == json!(true) {
            outln!(
                "replica {name}: {} entries intact, {} signed heads (key {})",
                replica["entries"],
                replica["heads"],
                replica["key_id"].as_str().unwrap_or_default()
            );
        } else {
            eprintln!(
                "airlock: journal_broken: replica {name}: {}",
                replica["message"].as_str().unwrap_or_default()
            );
        }
    }
}

fn print_verdict(verdict: &Value) {
    outln!(
        "journal intact: {} entries, root {}, {} signed heads",
        verdict["entries"],
        verdict["root"].as_str().unwrap_or_default(),
        verdict["heads"]
    );
    if let Some(size) = verdict["extends"].as_u64() {
        outln!("extends the exported head of {size} entries (consistency proof holds)");
    }
    if let Some(unsealed) = verdict["unsealed"].as_u64().filter(|n| *n > 0) {
        outln!(
            "{unsealed} newest entries are not yet under a signed head (the writer signs every few seconds while it writes, and when it stops)"
        );
    }
}

fn default_key(cli: &Cli) -> Result<VerifyingKey, Failure> {
    Ok(read_public_key(&cli.state_dir.join(PUBLIC_KEY_FILE))?)
}

fn read_head(file: &Path) -> Result<TreeHead, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::usage(
            "read_failed",
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::usage(
            "head_invalid",
            format!(
                "{} is not a tree head from `airlock journal head --export`: {e}",
                file.display()
            ),
        )
    })
}

fn entry_json(entry: &Entry) -> Value {
    json!({
        "seq": entry.seq,
        "time": entry.time,
        "kind": entry.kind,
        "payload": serde_json::from_str::<Value>(&entry.payload).unwrap_or(Value::Null),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    })
}

pub fn run_attest(cli: &Cli, command: &AttestCommand) -> u8 {
    let result = match command {
        AttestCommand::Export { id } => export(cli, id),
        AttestCommand::Verify {
            target,
            key,
            input,
            output,
        } => verify(
            cli,
            target,
            key.as_deref(),
            input.as_deref(),
            output.as_deref(),
        ),
    };
    result.unwrap_or_else(Failure::report)
}

/// The proof of attestation `id` from the journal (which must verify)
/// and its egress records.
fn proof_for(cli: &Cli, id: &str) -> Result<(Proof, Vec<Value>), Failure> {
    let store = open_state(cli)?;
    let journal = store.all()?;
    if let Err(e) = airlock::journal::verify(&journal) {
        return Err(Failure {
            code: "journal_broken",
            message: format!("the journal does not verify: {e}"),
            exit: BROKEN,
        });
    }
    let (entry, attestation) = journal
        .iter()
        .find_map(|e| attestation_in(e).filter(|a| a.id == id).map(|a| (e, a)))
        .ok_or_else(|| {
            Failure::usage(
                "attestation_not_found",
                format!("no attestation `{id}` in the journal"),
            )
        })?;
    let records = journal
        .iter()
        .filter(|e| e.kind == airlock::journal::EntryKind::Egress)
        .filter_map(|e| serde_json::from_str::<Value>(&e.payload).ok())
        .filter(|p| p["invocation_id"] == json!(id))
        .collect();
    let proof = Proof::new(attestation, entry, store.inclusion(entry.seq)??);
    Ok((proof, records))
}

fn export(cli: &Cli, id: &str) -> Result<u8, Failure> {
    let (proof, _) = proof_for(cli, id)?;
    outln!(
        "{}",
        serde_json::to_string_pretty(&proof).unwrap_or_default()
    );
    Ok(exit_code::OK)
}

fn verify(
    cli: &Cli,
    target: &str,
    key: Option<&Path>,
    input: Option<&Path>,
    output: Option<&Path>,
) -> Result<u8, Failure> {
    let mut checks: Vec<(String, Result<String, String>)> = Vec::new();
    let trusted = match key {
        Some(file) => read_public_key(file)?,
        None => default_key(cli)?,
    };
    let proof = if Path::new(target).is_file() {
        let text = std::fs::read_to_string(target)
            .map_err(|e| Failure::usage("read_failed", format!("cannot read {target}: {e}")))?;
        serde_json::from_str::<Proof>(&text).map_err(|e| {
            Failure::usage(
                "attestation_invalid",
                format!("{target} is not a proof from `airlock attest export`: {e}"),
            )
        })?
    } else {
        let (proof, records) = proof_for(cli, target)?;
        checks.push(("journal chain".into(), Ok("every entry verifies".into())));
        let digest = egress_digest(&records);
        checks.push((
            "egress records".into(),
            if digest == proof.attestation.egress_digest
                && records.len() == proof.attestation.egress_count
            {
                Ok(format!("{} records match the digest", records.len()))
            } else {
                Err(format!(
                    "the journal's {} records do not match the attested digest",
                    records.len()
                ))
            },
        ));
        proof
    };
    checks.push((
        "signed tree head".into(),
        proof
            .verify(&trusted)
            .map(|size| {
                format!(
                    "entry {} is in the head of {size} entries signed by key {}",
                    proof.entry.seq,
                    airlock::attest::key_id(&trusted)
                )
            })
            .map_err(|e| e.to_string()),
    ));
    for (name, file, expected) in [
        (
            "input digest",
            input,
            Some(proof.attestation.input_sha256.clone()),
        ),
        (
            "output digest",
            output,
            proof.attestation.output_sha256.clone(),
        ),
    ] {
        if let Some(file) = file {
            checks.push((name.into(), digest_matches(file, expected.as_deref())));
        }
    }
    let valid = checks.iter().all(|(_, r)| r.is_ok());
    outln!(
        "{}",
        json!({
            "valid": valid,
            "attestation": proof.attestation,
            "checks": checks.iter().map(|(name, r)| match r {
                Ok(detail) => json!({"check": name, "ok": true, "detail": detail}),
                Err(detail) => json!({"check": name, "ok": false, "detail": detail}),
            }).collect::<Vec<_>>(),
        })
    );
    Ok(if valid { exit_code::OK } else { BROKEN })
}

fn digest_matches(file: &Path, expected: Option<&str>) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let actual = sha256_hex(&bytes);
    match expected {
        Some(expected) if expected == actual => {
            Ok(format!("{} matches", PathBuf::from(file).display()))
        }
        Some(_) => Err(format!(
            "{} does not match the attested digest",
            file.display()
        )),
        None => Err("the attestation records no output".into()),
    }
}
