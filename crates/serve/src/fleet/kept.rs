//! Statements as rows of the shared database (`replica_statements`).

use super::Published;
use airlock::store::sql::{Mode, Tx, args};
use airlock::store::{Store, StoreError};

/// Publishes `statement` as `replica`'s, replacing the one it published
/// before.
pub(crate) fn publish(
    store: &Store,
    replica: &str,
    statement: &Published,
) -> Result<(), StoreError> {
    store.transaction("publishing the replica's statement", Mode::Write, |tx| {
        tx.execute(
            "INSERT INTO replica_statements (replica, statement, signature, published) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (replica) DO UPDATE SET \
             statement = EXCLUDED.statement, signature = EXCLUDED.signature, \
             published = EXCLUDED.published",
            args![
                replica,
                statement.text.as_str(),
                statement.signature.as_str(),
                statement.published.as_str()
            ],
        )
        .map(drop)
    })
}

fn published_of(tx: &mut dyn Tx, replica: &str) -> Result<Option<Published>, StoreError> {
    tx.query_opt(
        "SELECT statement, signature, published FROM replica_statements WHERE replica = ?1",
        args![replica],
    )?
    .map(|mut row| {
        Ok(Published {
            text: row.text(0)?,
            signature: row.text(1)?,
            published: row.text(2)?,
        })
    })
    .transpose()
}

/// What `replica` published, if anything.
pub(crate) fn published(store: &Store, replica: &str) -> Result<Option<Published>, StoreError> {
    store.transaction("reading a replica's statement", Mode::Read, |tx| {
        published_of(tx, replica)
    })
}

/// Every replica the database knows, with what each published.
pub(crate) fn statements(store: &Store) -> Result<Vec<(String, Option<Published>)>, StoreError> {
    store.transaction("reading the replicas' statements", Mode::Snapshot, |tx| {
        let names: Vec<String> = tx
            .query("SELECT name FROM replicas ORDER BY name", &[])?
            .into_iter()
            .map(|mut row| row.text(0))
            .collect::<Result<_, _>>()?;
        names
            .into_iter()
            .map(|name| {
                let published = published_of(tx, &name)?;
                Ok((name, published))
            })
            .collect()
    })
}

/// The replica approval `id` was asked on.
pub(crate) fn approval_replica(store: &Store, id: &str) -> Result<Option<String>, StoreError> {
    store.transaction("reading where an approval was asked", Mode::Read, |tx| {
        tx.query_opt("SELECT replica FROM approvals WHERE id = ?1", args![id])?
            .map(|mut row| row.text(0))
            .transpose()
    })
}
