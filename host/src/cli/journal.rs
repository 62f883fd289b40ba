//! `airlock journal` and `airlock attest`: verify the chain, read it, and
//! prove single executions.

use super::args::{AttestCommand, Cli, JournalCommand};
use super::serve::ask;
use super::{Failure, open_store};
use airlock::attest::{Attestation, HostKey, Proof, egress_digest, read_public_key, sha256_hex};
use airlock::exit_code;
use airlock::journal::{ChainBreak, Entry, JournalStore};
use airlock::serve::operator::OperatorRequest;
use airlock::store::SqliteStore;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// `journal verify` exits 1 when the chain is broken.
const BROKEN: u8 = 1;

/// Through a running server's operator socket when one answers, else the
/// state directory's database.
pub async fn run_journal(cli: &Cli, command: &JournalCommand) -> u8 {
    journal(cli, command).await.unwrap_or_else(Failure::report)
}

async fn journal(cli: &Cli, command: &JournalCommand) -> Result<u8, Failure> {
    match command {
        JournalCommand::Verify { json } => {
            let verdict = match ask(cli, &OperatorRequest::JournalVerify).await? {
                Some(answer) => answer,
                None => match open_store(cli)?.verify()? {
                    Ok((count, head)) => json!({"valid": true, "entries": count, "head": head}),
                    Err(e) => {
                        json!({"valid": false, "first_bad_seq": e.seq(), "message": e.to_string()})
                    }
                },
            };
            let valid = verdict["valid"] == json!(true);
            if *json {
                println!("{verdict}");
            } else if valid {
                println!(
                    "journal intact: {} entries, head {}",
                    verdict["entries"],
                    verdict["head"].as_str().unwrap_or_default()
                );
            } else {
                eprintln!(
                    "airlock: journal_broken: {}",
                    verdict["message"].as_str().unwrap_or_default()
                );
            }
            Ok(if valid { exit_code::OK } else { BROKEN })
        }
        JournalCommand::Tail { count, json } => {
            let entries: Vec<Entry> =
                match ask(cli, &OperatorRequest::JournalTail { count: *count }).await? {
                    Some(answer) => serde_json::from_value(answer)
                        .map_err(|e| Failure::usage("operator_socket_failed", e.to_string()))?,
                    None => open_store(cli)?.tail(*count)?,
                };
            for entry in entries {
                if *json {
                    println!("{}", entry_json(&entry));
                } else {
                    let payload: String = entry.payload.chars().take(160).collect();
                    println!(
                        "{:>6}  {}  {:<18} {payload}",
                        entry.seq, entry.time, entry.kind
                    );
                }
            }
            Ok(exit_code::OK)
        }
    }
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
            input,
            output,
        } => verify(cli, target, input.as_deref(), output.as_deref()),
    };
    result.unwrap_or_else(Failure::report)
}

/// The proof for attestation `id`, checkpointing the head first if no
/// checkpoint covers it yet (that needs the host key).
fn proof_for(cli: &Cli, store: &SqliteStore, id: &str) -> Result<Proof, Failure> {
    let chain = store.all()?;
    if let Err(e) = airlock::journal::verify(&chain) {
        return Err(broken(&e));
    }
    let (index, attestation) = chain
        .iter()
        .enumerate()
        .find_map(|(i, e)| attestation_of(e).filter(|a| a.id == id).map(|a| (i, a)))
        .ok_or_else(|| {
            Failure::usage(
                "attestation_not_found",
                format!("no attestation `{id}` in the journal"),
            )
        })?;
    if let Some(proof) = Proof::from_chain(attestation.clone(), &chain, index) {
        return Ok(proof);
    }
    let key = HostKey::open_or_create(&cli.state_dir)?;
    store.checkpoint(&|seq, hash| key.checkpoint(seq, hash))?;
    let chain = store.all()?;
    Proof::from_chain(attestation, &chain, index).ok_or_else(|| {
        Failure::usage(
            "attestation_invalid",
            "the new checkpoint does not cover the attestation",
        )
    })
}

fn attestation_of(entry: &Entry) -> Option<Attestation> {
    (entry.kind == "invocation")
        .then(|| serde_json::from_str::<Value>(&entry.payload).ok())
        .flatten()
        .and_then(|p| serde_json::from_value(p["attestation"].clone()).ok())
}

fn broken(e: &ChainBreak) -> Failure {
    Failure {
        code: "journal_broken",
        message: format!("the journal does not verify: {e}"),
        exit: BROKEN,
    }
}

fn export(cli: &Cli, id: &str) -> Result<u8, Failure> {
    let store = open_store(cli)?;
    let proof = proof_for(cli, &store, id)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&proof).unwrap_or_default()
    );
    Ok(exit_code::OK)
}

fn verify(
    cli: &Cli,
    target: &str,
    input: Option<&Path>,
    output: Option<&Path>,
) -> Result<u8, Failure> {
    let mut checks: Vec<(String, Result<String, String>)> = Vec::new();
    let key = read_public_key(&cli.state_dir.join(airlock::attest::PUBLIC_KEY_FILE))?;
    let proof = if Path::new(target).is_file() {
        let text = std::fs::read_to_string(target)
            .map_err(|e| Failure::usage("read_failed", format!("cannot read {target}: {e}")))?;
        serde_json::from_str::<Proof>(&text).map_err(|e| {
            Failure::usage(
                "attestation_invalid",
                format!("{target} is not a proof: {e}"),
            )
        })?
    } else {
        let store = open_store(cli)?;
        let proof = proof_for(cli, &store, target)?;
        checks.push(("journal chain".into(), Ok("every entry verifies".into())));
        let records: Vec<Value> = store
            .all()?
            .iter()
            .filter(|e| e.kind == "egress")
            .filter_map(|e| serde_json::from_str::<Value>(&e.payload).ok())
            .filter(|p| p["invocation_id"] == json!(proof.attestation.id))
            .collect();
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
        "signed checkpoint".into(),
        proof
            .verify(&key)
            .map(|seq| {
                format!(
                    "covered by checkpoint {seq}, signed by key {}",
                    airlock::attest::key_id(&key)
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
    println!(
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
