//! [`Tx`] on the embedded SQLite database: statements prepared once per
//! connection, values bound and read without copies where SQLite allows.

use super::sql::{Arg, Mode, Row, Topic, Tx, Value};
use super::{SqliteStore, StoreError};
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::sync::atomic::Ordering;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Arg::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Arg::Int(n) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(n)),
            Arg::Bool(flag) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(flag.into())),
            Arg::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Arg::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

/// One transaction (or, for [`Mode::Read`], none) on the connection.
struct SqliteTx<'c> {
    conn: &'c Connection,
    action: &'static str,
    /// Whether agents changed: the handle's generation moves on commit.
    agents_changed: bool,
}

impl SqliteTx<'_> {
    fn value(value: ValueRef<'_>) -> Result<Value, StoreError> {
        Ok(match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::Int(n),
            ValueRef::Text(text) => Value::Text(
                std::str::from_utf8(text)
                    .map_err(|e| StoreError::Corrupt {
                        what: "text",
                        detail: e.to_string(),
                    })?
                    .to_string(),
            ),
            ValueRef::Blob(bytes) => Value::Bytes(bytes.to_vec()),
            ValueRef::Real(_) => {
                return Err(StoreError::Corrupt {
                    what: "row",
                    detail: "a real number where none is stored".into(),
                });
            }
        })
    }
}

impl Tx for SqliteTx<'_> {
    fn query(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError> {
        let failed = StoreError::sql(self.action);
        let mut statement = self.conn.prepare_cached(sql).map_err(failed)?;
        let columns = statement.column_count();
        let mut rows = statement
            .query(rusqlite::params_from_iter(args))
            .map_err(StoreError::sql(self.action))?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().map_err(StoreError::sql(self.action))? {
            let values = (0..columns)
                .map(|i| {
                    row.get_ref(i)
                        .map_err(StoreError::sql(self.action))
                        .and_then(Self::value)
                })
                .collect::<Result<_, _>>()?;
            found.push(Row::new(values));
        }
        Ok(found)
    }

    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(sql)
            .map_err(StoreError::sql(self.action))?;
        let changed = statement
            .execute(rusqlite::params_from_iter(args))
            .map_err(StoreError::sql(self.action))?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    fn for_update(&self) -> &'static str {
        // A write transaction began IMMEDIATE: it holds the database.
        ""
    }

    fn replica(&self) -> Option<&str> {
        None
    }

    fn notify(&mut self, topic: Topic, _payload: &str) -> Result<(), StoreError> {
        // Only this handle can change what a serving handle follows (the
        // claim keeps every other writer off), so only it needs telling.
        if topic == Topic::Agents {
            self.agents_changed = true;
        }
        Ok(())
    }
}

impl SqliteStore {
    /// Runs `work` in one transaction held as `mode` says
    /// ([`SqliteStore::held`]); a change to agents moves this handle's
    /// generation once it has committed.
    pub(crate) fn transaction<T, E: From<StoreError>>(
        &self,
        action: &'static str,
        mode: Mode,
        work: impl FnOnce(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let (result, agents_changed) = self.held(action, mode, |conn| {
            let mut tx = SqliteTx {
                conn,
                action,
                agents_changed: false,
            };
            let result = work(&mut tx)?;
            Ok::<_, E>((result, tx.agents_changed))
        })?;
        if agents_changed {
            self.agents_generation.fetch_add(1, Ordering::Release);
        }
        Ok(result)
    }
}
