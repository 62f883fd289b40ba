//! How both stores keep a tree head's frontier (comma-separated hex
//! nodes), and the error for a stored value that does not parse.

use super::tree::{Frontier, parse_hash};
use crate::store::StoreError;

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
        .map(parse_hash)
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt("tree head frontier"))?;
    Frontier::from_parts(size, nodes).map_err(corrupt("tree head frontier"))
}

/// A frontier as stored.
pub(crate) fn stored(frontier: &Frontier) -> String {
    frontier
        .nodes()
        .iter()
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join(",")
}
