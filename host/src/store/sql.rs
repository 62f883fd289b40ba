//! One transaction on either backend, for the domains that keep rows in
//! the store (approvals, agents, devices, the journal's appends): each
//! writes its statements and rules once, with `?N` parameters and SQL both
//! SQLite and PostgreSQL accept; the backends only run them.
//!
//! What differs between the backends and is not a schema lives here, named
//! for what it means: how a read locks the rows it will change
//! ([`Tx::for_update`]), whose log a replica writes ([`Tx::replica`]), and
//! how other handles hear of a change ([`Tx::notify`]).

use super::StoreError;

/// A value bound to a statement, borrowed from the caller.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    /// SQL `NULL`.
    Null,
    /// An integer (`INTEGER`, `BIGINT`; `INT`/`SMALLINT` when it fits).
    Int(i64),
    /// A truth value (`BOOLEAN`; 1 or 0 in SQLite).
    Bool(bool),
    /// Text.
    Text(&'a str),
    /// Bytes (`BLOB`, `BYTEA`).
    Bytes(&'a [u8]),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(text: &'a str) -> Self {
        Arg::Text(text)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(text: &'a String) -> Self {
        Arg::Text(text)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(text: Option<&'a str>) -> Self {
        text.map_or(Arg::Null, Arg::Text)
    }
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(n: Option<i64>) -> Self {
        n.map_or(Arg::Null, Arg::Int)
    }
}

impl From<bool> for Arg<'_> {
    fn from(flag: bool) -> Self {
        Arg::Bool(flag)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Arg::Bytes(bytes)
    }
}

/// The arguments of a statement: `args![a, b]` for `?1`, `?2`.
#[doc(hidden)]
#[macro_export]
macro_rules! sql_args {
    ($($arg:expr),* $(,)?) => {
        &[$($crate::store::sql::Arg::from($arg)),*]
    };
}
/// The arguments of a statement: `args![a, b]` binds `?1`, `?2`.
pub use crate::sql_args as args;

/// A value read from a row.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// SQL `NULL`, or a column already taken.
    #[default]
    Null,
    /// An integer.
    Int(i64),
    /// A truth value (PostgreSQL; SQLite stores them as integers).
    Bool(bool),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Bool(_) => "a truth value",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
        }
    }
}

/// One row a query returned. Each column is taken once, by position.
#[derive(Debug)]
pub struct Row(Vec<Value>);

impl Row {
    /// The row of these values, in column order.
    pub fn new(values: Vec<Value>) -> Self {
        Self(values)
    }

    fn take(&mut self, column: usize) -> Value {
        self.0
            .get_mut(column)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn wrong(column: usize, found: &Value, wanted: &str) -> StoreError {
        StoreError::Corrupt {
            what: "row",
            detail: format!("column {column} is {}, not {wanted}", found.kind()),
        }
    }

    /// Text, which may be `NULL`.
    pub fn opt_text(&mut self, column: usize) -> Result<Option<String>, StoreError> {
        match self.take(column) {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text)),
            other => Err(Self::wrong(column, &other, "text")),
        }
    }

    /// Text.
    pub fn text(&mut self, column: usize) -> Result<String, StoreError> {
        self.opt_text(column)?
            .ok_or_else(|| Self::wrong(column, &Value::Null, "text"))
    }

    /// An integer, which may be `NULL`.
    pub fn opt_int(&mut self, column: usize) -> Result<Option<i64>, StoreError> {
        match self.take(column) {
            Value::Null => Ok(None),
            Value::Int(n) => Ok(Some(n)),
            other => Err(Self::wrong(column, &other, "an integer")),
        }
    }

    /// An integer.
    pub fn int(&mut self, column: usize) -> Result<i64, StoreError> {
        self.opt_int(column)?
            .ok_or_else(|| Self::wrong(column, &Value::Null, "an integer"))
    }

    /// A truth value: a boolean, or SQLite's integer.
    pub fn flag(&mut self, column: usize) -> Result<bool, StoreError> {
        match self.take(column) {
            Value::Bool(flag) => Ok(flag),
            Value::Int(n) => Ok(n != 0),
            other => Err(Self::wrong(column, &other, "a truth value")),
        }
    }
}

/// What other handles on the same database are told of when a
/// transaction commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// An approval was requested or decided (the payload is its id).
    Approvals,
    /// An agent was added or removed.
    Agents,
}

/// How a transaction holds the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Statements that each stand alone: no transaction around them.
    Read,
    /// Reads that must see one snapshot, whatever commits meanwhile.
    Snapshot,
    /// Changes, committed together or not at all.
    Write,
}

/// One transaction, on whichever backend. Statements use `?N`
/// parameters; each failure names the action the transaction was begun
/// for.
pub trait Tx {
    /// The rows `sql` returns.
    fn query(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, StoreError>;

    /// Runs `sql`; how many rows it changed.
    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError>;

    /// The clause that ends a `SELECT` so that the rows it reads stay
    /// locked until the transaction ends: `FOR UPDATE` where rows are
    /// locked one by one, empty where a write transaction already holds
    /// the whole database (SQLite's `BEGIN IMMEDIATE`).
    fn for_update(&self) -> &'static str;

    /// The replica this handle writes as, in a database replicas share;
    /// `None` for a state directory's own database, which has one writer.
    fn replica(&self) -> Option<&str>;

    /// Tells every handle listening on `topic` once this transaction
    /// commits (at once outside a transaction).
    fn notify(&mut self, topic: Topic, payload: &str) -> Result<(), StoreError>;
}

impl dyn Tx + '_ {
    /// The first row `sql` returns, if any.
    pub fn query_opt(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_is_read_as_what_it_holds_or_refused_as_corrupt() {
        let mut row = Row::new(vec![
            Value::Text("a".into()),
            Value::Null,
            Value::Int(1),
            Value::Bool(true),
        ]);
        assert_eq!(row.text(0).expect("text"), "a");
        assert_eq!(row.opt_text(1).expect("null text"), None);
        assert!(row.flag(2).expect("SQLite's integer"));
        let refused = row.int(3).expect_err("a boolean is no integer");
        assert_eq!(refused.code(), "store_failed");
        assert!(
            refused.to_string().contains("column 3 is a truth value"),
            "{refused}"
        );
        assert!(row.text(0).is_err(), "a column is taken once");
        assert!(row.text(9).is_err(), "no such column");
    }
}
