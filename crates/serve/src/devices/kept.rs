//! [`DeviceStore`] on whichever store a host opened, written once: a
//! device paired through one replica's console is known to all, and a
//! revocation through any of them ends its cookie everywhere at its next
//! request. Each change commits with its journal record.

use super::{Device, DeviceError, DeviceStore};
use airlock::journal::{EntryKind, NewEntry, append_in};
use airlock::store::sql::{Mode, Row, Tx, args};
use airlock::store::{Store, StoreError};
use serde_json::Value;

/// The devices of one store.
pub(super) struct Kept(pub(super) Store);

const COLUMNS: &str = "id, operator, label, paired, last_seen, revoked";

fn device(mut row: Row) -> Result<Device, StoreError> {
    Ok(Device {
        id: row.text(0)?,
        operator: row.text(1)?,
        label: row.text(2)?,
        paired: row.text(3)?,
        last_seen: row.opt_text(4)?,
        revoked: row.opt_text(5)?,
    })
}

fn journal(tx: &mut dyn Tx, record: &Value) -> Result<(), StoreError> {
    append_in(tx, &[NewEntry::new(EntryKind::DeviceChanged, record)]).map(drop)
}

impl DeviceStore for Kept {
    fn record(&self, record: &Value) -> Result<(), StoreError> {
        self.0
            .transaction("journaling a device change", Mode::Write, |tx| {
                journal(tx, record)
            })
    }

    fn insert(
        &self,
        device: &Device,
        cookie_sha256: &str,
        record: &Value,
    ) -> Result<(), StoreError> {
        self.0.transaction("pairing a device", Mode::Write, |tx| {
            tx.execute(
                "INSERT INTO devices (id, operator, label, cookie_sha256, paired) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                args![
                    &device.id,
                    &device.operator,
                    &device.label,
                    cookie_sha256,
                    &device.paired
                ],
            )?;
            journal(tx, record)
        })
    }

    fn seen(&self, cookie_sha256: &str, seen: &str) -> Result<Option<Device>, StoreError> {
        self.0.transaction("checking a device", Mode::Read, |tx| {
            tx.query_opt(
                &format!(
                    "UPDATE devices SET last_seen = ?2 WHERE cookie_sha256 = ?1 AND revoked IS NULL \
                     RETURNING {COLUMNS}"
                ),
                args![cookie_sha256, seen],
            )?
            .map(device)
            .transpose()
        })
    }

    fn is_active(&self, id: &str) -> Result<bool, StoreError> {
        self.0.transaction("checking a device", Mode::Read, |tx| {
            Ok(tx
                .query_opt(
                    "SELECT 1 FROM devices WHERE id = ?1 AND revoked IS NULL",
                    args![id],
                )?
                .is_some())
        })
    }

    fn all(&self) -> Result<Vec<Device>, StoreError> {
        self.0.transaction("listing devices", Mode::Read, |tx| {
            tx.query(
                &format!("SELECT {COLUMNS} FROM devices ORDER BY paired DESC, id DESC"),
                &[],
            )?
            .into_iter()
            .map(device)
            .collect()
        })
    }

    fn revoke(
        &self,
        id: &str,
        when: &str,
        by: &str,
        record: &dyn Fn(&Device) -> Value,
    ) -> Result<Result<Device, DeviceError>, StoreError> {
        self.0.transaction("revoking a device", Mode::Write, |tx| {
            let lock = tx.for_update();
            let found = tx
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM devices WHERE id = ?1 {lock}"),
                    args![id],
                )?
                .map(device)
                .transpose()?;
            let Some(device) = found else {
                return Ok(Err(DeviceError::NotFound { id: id.to_string() }));
            };
            if device.revoked.is_some() {
                return Ok(Err(DeviceError::Revoked { id: id.to_string() }));
            }
            tx.execute(
                "UPDATE devices SET revoked = ?2, revoked_by = ?3 WHERE id = ?1",
                args![id, when, by],
            )?;
            journal(tx, &record(&device))?;
            Ok(Ok(Device {
                revoked: Some(when.to_string()),
                ..device
            }))
        })
    }
}
