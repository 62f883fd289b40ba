//! [`DeviceStore`] on the shared database: a device paired through one
//! replica's console is known to all, and a revocation through any of
//! them ends its cookie everywhere.

use super::{Device, DeviceError, DeviceStore};
use crate::journal::{EntryKind, NewEntry, postgres_append_in};
use crate::store::{PostgresStore, StoreError};
use serde_json::Value;
use tokio_postgres::Row;

const SELECT: &str = "SELECT id, operator, label, paired, last_seen, revoked FROM devices";

fn row_device(row: &Row) -> Device {
    Device {
        id: row.get(0),
        operator: row.get(1),
        label: row.get(2),
        paired: row.get(3),
        last_seen: row.get(4),
        revoked: row.get(5),
    }
}

impl DeviceStore for PostgresStore {
    fn record(&self, record: &Value) -> Result<(), StoreError> {
        self.run(async {
            let failed = StoreError::postgres("journaling a device change");
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            postgres_append_in(
                &tx,
                self.replica(),
                &[NewEntry::new(EntryKind::DeviceChanged, record)],
            )
            .await?;
            tx.commit().await.map_err(&failed)
        })
    }

    fn insert(
        &self,
        device: &Device,
        cookie_sha256: &str,
        record: &Value,
    ) -> Result<(), StoreError> {
        self.run(async {
            let failed = StoreError::postgres("pairing a device");
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            tx.execute(
                "INSERT INTO devices (id, operator, label, cookie_sha256, paired) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &device.id,
                    &device.operator,
                    &device.label,
                    &cookie_sha256,
                    &device.paired,
                ],
            )
            .await
            .map_err(&failed)?;
            postgres_append_in(
                &tx,
                self.replica(),
                &[NewEntry::new(EntryKind::DeviceChanged, record)],
            )
            .await?;
            tx.commit().await.map_err(&failed)
        })
    }

    fn seen(&self, cookie_sha256: &str, seen: &str) -> Result<Option<Device>, StoreError> {
        self.run(async {
            self.client()
                .await?
                .query_opt(
                    "UPDATE devices SET last_seen = $2 WHERE cookie_sha256 = $1 AND revoked IS NULL \
                     RETURNING id, operator, label, paired, last_seen, revoked",
                    &[&cookie_sha256, &seen],
                )
                .await
                .map(|row| row.as_ref().map(row_device))
                .map_err(StoreError::postgres("checking a device"))
        })
    }

    fn is_active(&self, id: &str) -> Result<bool, StoreError> {
        self.run(async {
            self.client()
                .await?
                .query_opt(
                    "SELECT 1 FROM devices WHERE id = $1 AND revoked IS NULL",
                    &[&id],
                )
                .await
                .map(|row| row.is_some())
                .map_err(StoreError::postgres("checking a device"))
        })
    }

    fn all(&self) -> Result<Vec<Device>, StoreError> {
        self.run(async {
            self.client()
                .await?
                .query(&format!("{SELECT} ORDER BY paired DESC, id DESC"), &[])
                .await
                .map(|rows| rows.iter().map(row_device).collect())
                .map_err(StoreError::postgres("listing devices"))
        })
    }

    fn revoke(
        &self,
        id: &str,
        when: &str,
        by: &str,
        record: &dyn Fn(&Device) -> Value,
    ) -> Result<Result<Device, DeviceError>, StoreError> {
        self.run(async {
            let failed = StoreError::postgres("revoking a device");
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            let device = tx
                .query_opt(&format!("{SELECT} WHERE id = $1 FOR UPDATE"), &[&id])
                .await
                .map_err(&failed)?
                .as_ref()
                .map(row_device);
            let Some(device) = device else {
                return Ok(Err(DeviceError::NotFound { id: id.to_string() }));
            };
            if device.revoked.is_some() {
                return Ok(Err(DeviceError::Revoked { id: id.to_string() }));
            }
            tx.execute(
                "UPDATE devices SET revoked = $2, revoked_by = $3 WHERE id = $1",
                &[&id, &when, &by],
            )
            .await
            .map_err(&failed)?;
            let record = record(&device);
            postgres_append_in(
                &tx,
                self.replica(),
                &[NewEntry::new(EntryKind::DeviceChanged, &record)],
            )
            .await?;
            tx.commit().await.map_err(&failed)?;
            Ok(Ok(Device {
                revoked: Some(when.to_string()),
                ..device
            }))
        })
    }
}
