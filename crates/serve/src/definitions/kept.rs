//! Pins and changes as rows, on whichever store, each step journaled in
//! the transaction that takes it.

use super::{Change, ChangeStatus, Definition, DefinitionError, Subject, Verdict};
use airlock::journal::{EntryKind, NewEntry, append_in};
use airlock::store::StoreError;
use airlock::store::sql::{Row, Tx, args};
use serde_json::{Value, json};

/// A listing's definition against its pin.
pub(super) enum Checked {
    /// It is the pinned one.
    Pinned,
    /// There was no pin: it is pinned now (first sight).
    FirstSight,
    /// It differs from its pin, or is new to a server seen before: the
    /// pinned definition's JSON (none for a new tool, which is withheld),
    /// and the change if this listing raised it (not when it was asked
    /// before).
    Differs {
        pinned: Option<String>,
        raised: Option<Box<Change>>,
    },
}

const CHANGE_COLUMNS: &str = "id, server, subject, old_definition, old_digest, new_definition, \
                              new_digest, status, seen, decided_at, decided_by";

fn journal(tx: &mut dyn Tx, record: &Value) -> Result<(), StoreError> {
    append_in(tx, &[NewEntry::new(EntryKind::ServerDefinition, record)]).map(drop)
}

fn now() -> String {
    crate::devices::now_rfc3339()
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
}

fn change_of(mut row: Row) -> Result<Change, DefinitionError> {
    let id = row.text(0)?;
    let server = row.text(1)?;
    let subject = Subject::from_key(&row.text(2)?);
    let old = parsed(&row.text(3)?);
    let old_digest = row.text(4)?;
    let new = parsed(&row.text(5)?);
    let new_digest = row.text(6)?;
    let status = row.text(7)?;
    let status = ChangeStatus::parse(&status).ok_or_else(|| DefinitionError::Unreadable {
        server: server.clone(),
        subject: subject.to_string(),
        message: format!("a change's status is `{status}`"),
    })?;
    Ok(Change {
        id,
        server,
        subject,
        old,
        old_digest,
        new,
        new_digest,
        status,
        seen: row.text(8)?,
        decided_at: row.opt_text(9)?,
        decided_by: row.opt_text(10)?,
    })
}

/// Checks `definition` of `server`'s `subject` against its pin: without
/// one, it is pinned when `pin_new` (the server's first sight) and raised
/// as a change otherwise; a differing one is raised as a change.
pub(super) fn check(
    tx: &mut dyn Tx,
    server: &str,
    subject: &Subject,
    definition: &Definition,
    pin_new: bool,
) -> Result<Checked, DefinitionError> {
    let key = subject.key();
    let select = format!(
        "SELECT digest, definition FROM server_pins WHERE server = ?1 AND subject = ?2 {}",
        tx.for_update()
    );
    let mut pin = tx.query_opt(&select, args![server, key.as_str()])?;
    if pin.is_none() && pin_new {
        let pinned = tx.execute(
            "INSERT INTO server_pins (server, subject, digest, definition, pinned) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            args![
                server,
                key.as_str(),
                definition.digest.as_str(),
                definition.json.as_str(),
                now().as_str()
            ],
        )?;
        if pinned == 1 {
            journal(
                tx,
                &json!({
                    "event": "pinned",
                    "server": server,
                    "subject": key,
                    "digest": definition.digest,
                    "definition": parsed(&definition.json),
                }),
            )?;
            return Ok(Checked::FirstSight);
        }
        // Another replica pinned it first: hold this listing to its pin.
        pin = tx.query_opt(&select, args![server, key.as_str()])?;
        if pin.is_none() {
            return Err(DefinitionError::Unreadable {
                server: server.to_string(),
                subject: subject.to_string(),
                message: "its pin was neither written nor found".into(),
            });
        }
    }
    let (pinned_digest, pinned) = match pin {
        Some(mut pin) => (pin.text(0)?, Some(pin.text(1)?)),
        None => (String::new(), None),
    };
    if pinned_digest == definition.digest {
        return Ok(Checked::Pinned);
    }
    let asked = tx.query_opt(
        "SELECT id FROM server_changes WHERE server = ?1 AND subject = ?2 \
         AND old_digest = ?3 AND new_digest = ?4 AND status IN ('pending', 'rejected')",
        args![
            server,
            key.as_str(),
            pinned_digest.as_str(),
            definition.digest.as_str()
        ],
    )?;
    if asked.is_some() {
        return Ok(Checked::Differs {
            pinned,
            raised: None,
        });
    }
    // The server changed again before anyone decided: the newer listing
    // is the one to decide on.
    tx.execute(
        "UPDATE server_changes SET status = 'superseded' \
         WHERE server = ?1 AND subject = ?2 AND status = 'pending'",
        args![server, key.as_str()],
    )?;
    let old_definition = pinned.clone().unwrap_or_else(|| "null".to_string());
    let change = Change {
        id: ulid::Ulid::new().to_string(),
        server: server.to_string(),
        subject: subject.clone(),
        old: parsed(&old_definition),
        old_digest: pinned_digest,
        new: parsed(&definition.json),
        new_digest: definition.digest.clone(),
        status: ChangeStatus::Pending,
        seen: now(),
        decided_at: None,
        decided_by: None,
    };
    let inserted = tx.execute(
        "INSERT INTO server_changes (id, server, subject, old_definition, old_digest, \
         new_definition, new_digest, status, seen) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8) ON CONFLICT DO NOTHING",
        args![
            change.id.as_str(),
            server,
            key.as_str(),
            old_definition.as_str(),
            change.old_digest.as_str(),
            definition.json.as_str(),
            change.new_digest.as_str(),
            change.seen.as_str()
        ],
    )?;
    if inserted == 0 {
        // Raised by another replica at the same moment.
        return Ok(Checked::Differs {
            pinned,
            raised: None,
        });
    }
    journal(
        tx,
        &json!({
            "event": "changed",
            "id": change.id,
            "server": server,
            "subject": key,
            "old_digest": change.old_digest,
            "new_digest": change.new_digest,
            "definition": change.new,
        }),
    )?;
    Ok(Checked::Differs {
        pinned,
        raised: Some(Box::new(change)),
    })
}

/// The digest pinned for `server`'s `subject`, if any.
pub(super) fn pinned_digest(
    tx: &mut dyn Tx,
    server: &str,
    subject: &Subject,
) -> Result<Option<String>, DefinitionError> {
    Ok(tx
        .query_opt(
            "SELECT digest FROM server_pins WHERE server = ?1 AND subject = ?2",
            args![server, subject.key().as_str()],
        )?
        .map(|mut row| row.text(0))
        .transpose()?)
}

/// The changes, newest first (pending ones only unless `all`).
pub(super) fn changes(tx: &mut dyn Tx, all: bool) -> Result<Vec<Change>, DefinitionError> {
    let filter = if all { "" } else { "WHERE status = 'pending'" };
    tx.query(
        &format!("SELECT {CHANGE_COLUMNS} FROM server_changes {filter} ORDER BY id DESC"),
        &[],
    )?
    .into_iter()
    .map(change_of)
    .collect()
}

/// Change `id`, if there is one.
pub(super) fn change(tx: &mut dyn Tx, id: &str) -> Result<Option<Change>, DefinitionError> {
    tx.query_opt(
        &format!("SELECT {CHANGE_COLUMNS} FROM server_changes WHERE id = ?1"),
        args![id],
    )?
    .map(change_of)
    .transpose()
}

/// Decides pending change `id`; accepting moves the pin to its new
/// definition (if the pin is still the one it would replace).
pub(super) fn decide(
    tx: &mut dyn Tx,
    id: &str,
    verdict: Verdict,
    decided_by: &str,
) -> Result<Change, DefinitionError> {
    let select = format!(
        "SELECT {CHANGE_COLUMNS} FROM server_changes WHERE id = ?1 {}",
        tx.for_update()
    );
    let row = tx
        .query_opt(&select, args![id])?
        .ok_or_else(|| DefinitionError::NotFound { id: id.to_string() })?;
    let mut change = change_of(row)?;
    if change.status != ChangeStatus::Pending {
        return Err(DefinitionError::Decided {
            id: change.id,
            status: change.status.as_str(),
        });
    }
    let key = change.subject.key();
    let decided_at = now();
    if verdict == Verdict::Accept {
        // A tool new to the server has no pin to move: the change makes one.
        let moved = if change.old_digest.is_empty() {
            tx.execute(
                "INSERT INTO server_pins (server, subject, digest, definition, pinned) \
                 SELECT server, subject, new_digest, new_definition, ?1 FROM server_changes \
                 WHERE id = ?2 ON CONFLICT DO NOTHING",
                args![decided_at.as_str(), id],
            )?
        } else {
            tx.execute(
                "UPDATE server_pins SET digest = ?1, pinned = ?2, \
             definition = (SELECT new_definition FROM server_changes WHERE id = ?3) \
             WHERE server = ?4 AND subject = ?5 AND digest = ?6",
                args![
                    change.new_digest.as_str(),
                    decided_at.as_str(),
                    id,
                    change.server.as_str(),
                    key.as_str(),
                    change.old_digest.as_str()
                ],
            )?
        };
        if moved == 0 {
            return Err(DefinitionError::Decided {
                id: change.id,
                status: "stale (its pin moved since)",
            });
        }
    }
    change.status = match verdict {
        Verdict::Accept => ChangeStatus::Accepted,
        Verdict::Reject => ChangeStatus::Rejected,
    };
    tx.execute(
        "UPDATE server_changes SET status = ?1, decided_at = ?2, decided_by = ?3 WHERE id = ?4",
        args![change.status.as_str(), decided_at.as_str(), decided_by, id],
    )?;
    journal(
        tx,
        &json!({
            "event": change.status.as_str(),
            "id": change.id,
            "server": change.server,
            "subject": key,
            "old_digest": change.old_digest,
            "new_digest": change.new_digest,
            "decided_by": decided_by,
        }),
    )?;
    change.decided_at = Some(decided_at);
    change.decided_by = Some(decided_by.to_string());
    Ok(change)
}
