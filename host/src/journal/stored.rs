//! How both stores keep the journal's hashes (hex text; a tree head's
//! frontier as comma-separated hex nodes), and the error for a stored
//! value that does not parse.

use super::tree::{Frontier, Hash};
use crate::store::StoreError;
use crate::store::sql::Row;

pub(crate) fn corrupt<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    }
}

/// A stored frontier (comma-separated hex) of a tree of `size` leaves.
pub(crate) fn frontier(size: u64, nodes: &str) -> Result<Frontier, StoreError> {
    let nodes = nodes
        .split(',')
        .filter(|node| !node.is_empty())
        .map(str::parse::<Hash>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt("tree head frontier"))?;
    Frontier::from_parts(size, nodes).map_err(corrupt("tree head frontier"))
}

/// A frontier as stored.
pub(crate) fn stored(frontier: &Frontier) -> String {
    frontier
        .nodes()
        .iter()
        .map(Hash::to_hex)
        .collect::<Vec<_>>()
        .join(",")
}

/// Column `column` of `row`: a stored hash of the chain or the tree, read
/// as [`Hash::from_stored`] reads it (a value that is not a hash is kept
/// for the audit to name, not a failed read). For reading only: the writer
/// extends the journal from [`hash_to_extend`].
pub(crate) fn hash(row: &mut Row, column: usize) -> Result<Hash, StoreError> {
    Ok(Hash::from_stored(&row.text(column)?))
}

/// A stored hash the writer is about to chain onto or sign over: one that
/// is not a hash stops the writer (`what` names it), so the host key never
/// vouches for a changed row and the change stays where the audit finds it.
pub(crate) fn hash_to_extend(
    row: &mut Row,
    column: usize,
    what: &'static str,
) -> Result<Hash, StoreError> {
    row.text(column)?.parse().map_err(corrupt(what))
}
