//! [`Tx`] on the shared database: one pooled connection for the whole
//! transaction, each statement prepared once per connection and waited
//! for on the calling thread (the store's calls are synchronous).

use super::PostgresStore;
use super::listen::{AGENTS_NOTIFY, APPROVALS_NOTIFY};
use crate::store::StoreError;
use crate::store::sql::{Arg, Mode, Row, Topic, Tx, Value};
use bytes::BytesMut;
use std::error::Error;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

impl ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        // Each value is encoded as the column's own type, or refused: a
        // mismatch would otherwise reach the server as bytes of another
        // width.
        fn checked<T: ToSql>(
            value: T,
            ty: &Type,
            out: &mut BytesMut,
        ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
            if !T::accepts(ty) {
                return Err(format!("a {} parameter cannot hold this value", ty.name()).into());
            }
            value.to_sql(ty, out)
        }
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(n) if *ty == Type::INT4 => checked(i32::try_from(n)?, ty, out),
            Arg::Int(n) if *ty == Type::INT2 => checked(i16::try_from(n)?, ty, out),
            Arg::Int(n) => checked(n, ty, out),
            Arg::Bool(flag) => checked(flag, ty, out),
            Arg::Text(text) => checked(text, ty, out),
            Arg::Bytes(bytes) => checked(bytes, ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked value by value in `to_sql`.
        true
    }

    to_sql_checked!();
}

/// A returned row's values, by each column's type.
fn row(row: &tokio_postgres::Row) -> Result<Row, tokio_postgres::Error> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map(Value::Bool)
        } else if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|n| Value::Int(n.into()))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?
                .map(|n| Value::Int(n.into()))
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes)
        } else {
            row.try_get::<_, Option<String>>(i)?.map(Value::Text)
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row::new(values))
}

/// `?N` parameters as PostgreSQL writes them (`$N`).
fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

/// One transaction (or, for [`Mode::Read`], none) on a pooled connection.
struct PostgresTx<'s> {
    store: &'s PostgresStore,
    /// `None` once given up (a connection whose rollback failed is not
    /// returned to the pool).
    client: Option<deadpool_postgres::Object>,
    action: &'static str,
    /// A transaction is open on the connection.
    open: bool,
    /// A statement failed: PostgreSQL has aborted the transaction, and a
    /// `COMMIT` would roll it back while reporting success.
    failed: bool,
}

impl PostgresTx<'_> {
    fn client(&self) -> Result<&deadpool_postgres::Object, StoreError> {
        self.client.as_ref().ok_or(StoreError::Pool {
            detail: "the connection was given up".into(),
        })
    }

    fn failed(&mut self, error: tokio_postgres::Error) -> StoreError {
        self.failed = true;
        StoreError::Postgres {
            action: self.action,
            source: error,
        }
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let client = self.client()?;
        self.store
            .run(client.batch_execute(sql))
            .map_err(StoreError::postgres(self.action))
    }
}

impl Tx for PostgresTx<'_> {
    fn query(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError> {
        let client = self.client()?;
        let params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|arg| arg as &(dyn ToSql + Sync)).collect();
        let rows = self.store.run(async {
            let statement = client.prepare_cached(&dollars(sql)).await?;
            let rows = client.query(&statement, &params).await?;
            rows.iter().map(row).collect::<Result<Vec<_>, _>>()
        });
        rows.map_err(|e| self.failed(e))
    }

    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let client = self.client()?;
        let params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|arg| arg as &(dyn ToSql + Sync)).collect();
        let changed = self.store.run(async {
            let statement = client.prepare_cached(&dollars(sql)).await?;
            client.execute(&statement, &params).await
        });
        changed.map_err(|e| self.failed(e))
    }

    fn for_update(&self) -> &'static str {
        "FOR UPDATE"
    }

    fn replica(&self) -> Option<&str> {
        Some(self.store.replica())
    }

    fn notify(&mut self, topic: Topic, payload: &str) -> Result<(), StoreError> {
        let channel = match topic {
            Topic::Approvals => APPROVALS_NOTIFY,
            Topic::Agents => AGENTS_NOTIFY,
        };
        self.execute(
            "SELECT pg_notify(?1, ?2)",
            &[Arg::Text(channel), Arg::Text(payload)],
        )
        .map(drop)
    }
}

impl Drop for PostgresTx<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        if let Err(error) = self.batch("ROLLBACK") {
            tracing::warn!(%error, "rolling back a failed write; the connection is closed");
            if let Some(client) = self.client.take() {
                drop(deadpool_postgres::Object::take(client));
            }
        }
    }
}

impl PostgresStore {
    /// Runs `work` in one transaction held as `mode` says (a snapshot is
    /// `REPEATABLE READ`, read only). Rolled back unless `work` succeeds.
    pub(crate) fn transaction<T, E: From<StoreError>>(
        &self,
        action: &'static str,
        mode: Mode,
        work: impl FnOnce(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let client = self.run(self.client())?;
        let mut tx = PostgresTx {
            store: self,
            client: Some(client),
            action,
            open: false,
            failed: false,
        };
        let begin = match mode {
            Mode::Read => None,
            Mode::Snapshot => Some("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
            Mode::Write => Some("BEGIN"),
        };
        if let Some(begin) = begin {
            tx.batch(begin)?;
            tx.open = true;
        }
        let result = work(&mut tx)?;
        if tx.failed {
            // The work went on past a failed statement: nothing of it holds.
            return Err(StoreError::Aborted { action }.into());
        }
        if tx.open {
            tx.batch("COMMIT")?;
            tx.open = false;
        }
        Ok(result)
    }
}
