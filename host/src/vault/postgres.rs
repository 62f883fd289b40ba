//! The vault's rows in the database replicas share: every replica reads
//! the same sealed secrets and opens them with the master key it derives
//! from the same passphrase.

use super::envelope::Envelope;
use super::rows::{Meta, PutError, Row, VaultRows, parse_scope};
use crate::store::{PostgresStore, StoreError};
use deadpool_postgres::GenericClient;

const COLUMNS: &str = "name, scope, created, nonce, ciphertext, key_nonce, wrapped_key";

/// A vault in the shared database.
#[derive(Debug)]
pub(crate) struct PostgresRows {
    store: PostgresStore,
}

impl PostgresRows {
    pub(super) fn new(store: PostgresStore) -> Self {
        Self { store }
    }
}

fn parse(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    Ok(Row {
        name: row.get(0),
        scope: parse_scope(row.get(1))?,
        created: row.get(2),
        envelope: Envelope {
            nonce: row.get(3),
            ciphertext: row.get(4),
            key_nonce: row.get(5),
            wrapped_key: row.get(6),
        },
    })
}

async fn put_on(client: &impl GenericClient, row: &Row) -> Result<(), StoreError> {
    client
        .execute(
            &format!(
                "INSERT INTO vault_secrets ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, nonce = excluded.nonce, \
                 ciphertext = excluded.ciphertext, key_nonce = excluded.key_nonce, \
                 wrapped_key = excluded.wrapped_key"
            ),
            &[
                &row.name,
                &row.scope.to_string(),
                &row.created,
                &row.envelope.nonce,
                &row.envelope.ciphertext,
                &row.envelope.key_nonce,
                &row.envelope.wrapped_key,
            ],
        )
        .await
        .map(drop)
        .map_err(StoreError::postgres("storing a secret"))
}

async fn write_meta(client: &impl GenericClient, meta: &Meta) -> Result<(), StoreError> {
    for (key, value) in meta.pairs() {
        client
            .execute(
                "INSERT INTO vault_meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .await
            .map_err(StoreError::postgres("writing the vault's meta rows"))?;
    }
    Ok(())
}

async fn all_on(client: &impl GenericClient, lock: &str) -> Result<Vec<Row>, StoreError> {
    client
        .query(
            &format!("SELECT {COLUMNS} FROM vault_secrets ORDER BY name{lock}"),
            &[],
        )
        .await
        .map_err(StoreError::postgres("listing secrets"))?
        .iter()
        .map(parse)
        .collect()
}

impl VaultRows for PostgresRows {
    fn place(&self) -> String {
        self.store.describe().to_string()
    }

    fn meta(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.store.run(async {
            let rows = self
                .store
                .client()
                .await?
                .query("SELECT key, value FROM vault_meta", &[])
                .await
                .map_err(StoreError::postgres("reading the vault's meta rows"))?;
            Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
        })
    }

    fn create(&self, meta: &Meta) -> Result<bool, StoreError> {
        self.store.run(async {
            let failed = StoreError::postgres("creating the vault");
            let mut client = self.store.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            // The id row decides which of two racing creations wins.
            let claimed = tx
                .execute(
                    "INSERT INTO vault_meta (key, value) VALUES ('vault_id', $1) \
                     ON CONFLICT (key) DO NOTHING",
                    &[&meta.id],
                )
                .await
                .map_err(&failed)?;
            if claimed == 0 {
                return Ok(false);
            }
            write_meta(&tx, meta).await?;
            tx.commit().await.map_err(&failed)?;
            Ok(true)
        })
    }

    fn get(&self, name: &str) -> Result<Option<Row>, StoreError> {
        self.store.run(async {
            self.store
                .client()
                .await?
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM vault_secrets WHERE name = $1"),
                    &[&name],
                )
                .await
                .map_err(StoreError::postgres("reading a secret"))?
                .as_ref()
                .map(parse)
                .transpose()
        })
    }

    fn all(&self) -> Result<Vec<Row>, StoreError> {
        self.store
            .run(async { all_on(&self.store.client().await?, "").await })
    }

    fn put(&self, row: Row, key_id: &str) -> Result<(), PutError> {
        self.store.run(async {
            let failed = StoreError::postgres("storing a secret");
            let mut client = self.store.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            // Shared: a rotation (which locks the table) waits for this
            // store, or this store for the rotation and then sees its key.
            let current: Option<String> = tx
                .query_opt(
                    "SELECT value FROM vault_meta WHERE key = 'key_id' FOR SHARE",
                    &[],
                )
                .await
                .map_err(&failed)?
                .map(|r| r.get(0));
            if current.as_deref() != Some(key_id) {
                return Err(PutError::Rotated);
            }
            let existing = tx
                .query_opt(
                    "SELECT scope, created FROM vault_secrets WHERE name = $1 FOR UPDATE",
                    &[&row.name],
                )
                .await
                .map_err(&failed)?
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)));
            let created = match existing {
                Some((scope, _)) if scope != row.scope.to_string() => {
                    return Err(PutError::Scope(scope));
                }
                Some((_, created)) => created,
                None => row.created.clone(),
            };
            put_on(&tx, &Row { created, ..row }).await?;
            tx.commit().await.map_err(&failed)?;
            Ok(())
        })
    }

    fn remove(&self, name: &str) -> Result<bool, StoreError> {
        self.store.run(async {
            self.store
                .client()
                .await?
                .execute("DELETE FROM vault_secrets WHERE name = $1", &[&name])
                .await
                .map(|n| n > 0)
                .map_err(StoreError::postgres("removing a secret"))
        })
    }

    fn rewrap(
        &self,
        rewrap: &dyn Fn(Row) -> Result<Row, StoreError>,
        meta: &Meta,
    ) -> Result<(), StoreError> {
        self.store.run(async {
            let failed = StoreError::postgres("rotating the master key");
            let mut client = self.store.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            // Locked, so a secret stored meanwhile waits and is then
            // sealed under the meta rows it reads after this commit.
            tx.execute("LOCK TABLE vault_meta IN EXCLUSIVE MODE", &[])
                .await
                .map_err(&failed)?;
            for row in all_on(&tx, " FOR UPDATE").await? {
                put_on(&tx, &rewrap(row)?).await?;
            }
            write_meta(&tx, meta).await?;
            tx.commit().await.map_err(&failed)
        })
    }
}
