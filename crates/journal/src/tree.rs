//! The journal as a Merkle tree in the manner of Certificate Transparency
//! (RFC 6962 / RFC 9162 hashing): leaf `i` is entry `i + 1`'s hash. A root
//! over the first `n` leaves commits to exactly those entries, an inclusion
//! proof shows one entry under a root, and a consistency proof shows that a
//! later tree extends an earlier one — which is how truncation and
//! rewrites are caught against a head kept elsewhere.
//!
//! Proofs and their verification are `ct-merkle`'s (a small, tested RFC 6962
//! implementation with constant-time comparisons); the writer's running
//! root ([`Frontier`]) is the O(log n) state a log keeps so that signing a
//! head does not re-read the whole journal.

pub use crate::hash::Hash;
use crate::hash::NotAHash;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::{Digest, Sha256};

/// Why a proof or a stored tree value does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// A hash is not 64 hex digits.
    #[error(transparent)]
    NotAHash(#[from] NotAHash),
    /// The inclusion proof does not lead from the entry to the root.
    #[error("entry {seq} is not in the tree of {size} entries with that root ({why})")]
    NotIncluded {
        /// The entry.
        seq: u64,
        /// The tree's size.
        size: u64,
        /// What failed.
        why: String,
    },
    /// The newer tree does not extend the older one.
    #[error(
        "the journal of {new_size} entries does not extend the head of {old_size} entries ({why})"
    )]
    NotExtended {
        /// The older tree's size.
        old_size: u64,
        /// The newer tree's size.
        new_size: u64,
        /// What failed.
        why: String,
    },
    /// A stored frontier does not fit its tree size.
    #[error("a stored frontier of {found} hashes cannot describe {size} entries")]
    Frontier {
        /// The size it claims.
        size: u64,
        /// How many hashes it holds.
        found: usize,
    },
}

fn leaf_hash(leaf: &Hash) -> Hash {
    let mut hasher = Sha256::new_with_prefix([0x00]);
    hasher.update(leaf);
    Hash::from_hasher(hasher)
}

fn parent_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new_with_prefix([0x01]);
    hasher.update(left);
    hasher.update(right);
    Hash::from_hasher(hasher)
}

/// The roots of the perfect subtrees a tree of `size` leaves splits into,
/// largest first (one per set bit of `size`): enough to append and to
/// compute the root without the leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// Rebuilds a stored frontier: `nodes` must hold one hash per set bit
    /// of `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Self, TreeError> {
        if nodes.len() != size.count_ones() as usize {
            return Err(TreeError::Frontier {
                size,
                found: nodes.len(),
            });
        }
        Ok(Self { size, nodes })
    }

    /// How many leaves it covers.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Its subtree roots, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends one leaf.
    pub fn push(&mut self, leaf: &Hash) {
        let mut node = leaf_hash(leaf);
        // Each trailing set bit of the old size is a subtree of the new
        // leaf's height: merge with it, as binary addition carries.
        let mut carry = self.size;
        while carry & 1 == 1 {
            let left = self.nodes.pop().unwrap_or_default();
            node = parent_hash(&left, &node);
            carry >>= 1;
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// The RFC 6962 root (the hash of the empty string for no leaves).
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return Hash::of(b"");
        };
        nodes.fold(*last, |right, left| parent_hash(left, &right))
    }
}

/// A whole tree held in memory, to prove entries and extensions.
#[derive(Default)]
pub struct Tree {
    inner: MemoryBackedTree<Sha256, Hash>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one leaf.
    pub fn push(&mut self, leaf: Hash) {
        self.inner.push(leaf);
    }

    /// How many leaves.
    pub fn size(&self) -> u64 {
        self.inner.len()
    }

    /// The root over every leaf.
    pub fn root(&self) -> Hash {
        <[u8; 32]>::try_from(self.inner.root().as_bytes().as_slice())
            .map(Hash::from)
            .unwrap_or_default()
    }

    /// The inclusion proof of leaf `index`, if it exists.
    pub fn inclusion(&self, index: u64) -> Option<Vec<Hash>> {
        let index = usize::try_from(index).ok()?;
        (index < self.inner.items().len())
            .then(|| split(self.inner.prove_inclusion(index).as_bytes()))
    }

    /// The proof that this tree extends its first `old_size` leaves, if
    /// `0 < old_size <= size`.
    pub fn consistency(&self, old_size: u64) -> Option<Vec<Hash>> {
        let additions = usize::try_from(self.size().checked_sub(old_size)?).ok()?;
        (old_size > 0).then(|| split(self.inner.prove_consistency(additions).as_bytes()))
    }
}

fn split(bytes: &[u8]) -> Vec<Hash> {
    bytes
        .chunks_exact(32)
        .filter_map(|chunk| <[u8; 32]>::try_from(chunk).ok().map(Hash::from))
        .collect()
}

fn join(path: &[Hash]) -> Vec<u8> {
    path.iter().flat_map(Hash::as_bytes).copied().collect()
}

fn root_hash(root: &Hash, size: u64) -> RootHash<Sha256> {
    RootHash::new((*root.as_bytes()).into(), size)
}

/// Checks that `leaf` is entry `seq` (leaf `seq - 1`) of the tree of `size`
/// leaves whose root is `root`.
pub fn verify_inclusion(
    root: &Hash,
    size: u64,
    leaf: &Hash,
    seq: u64,
    path: &[Hash],
) -> Result<(), TreeError> {
    let not_included = |why: String| TreeError::NotIncluded { seq, size, why };
    let index = seq
        .checked_sub(1)
        .ok_or_else(|| not_included("sequence numbers start at 1".into()))?;
    let proof = InclusionProof::<Sha256>::try_from_bytes(join(path))
        .map_err(|e| not_included(e.to_string()))?;
    root_hash(root, size)
        .verify_inclusion(leaf, index, &proof)
        .map_err(|e| not_included(e.to_string()))
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends
/// the one of `old_size` leaves with root `old_root`.
pub fn verify_consistency(
    (old_root, old_size): (&Hash, u64),
    (new_root, new_size): (&Hash, u64),
    path: &[Hash],
) -> Result<(), TreeError> {
    let not_extended = |why: String| TreeError::NotExtended {
        old_size,
        new_size,
        why,
    };
    let proof = ConsistencyProof::<Sha256>::try_from_bytes(join(path))
        .map_err(|e| not_extended(e.to_string()))?;
    root_hash(new_root, new_size)
        .verify_consistency(&root_hash(old_root, old_size), &proof)
        .map_err(|e| not_extended(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| Hash::of(&i.to_be_bytes())).collect()
    }

    proptest! {
        /// The writer's running root is the RFC 6962 root the verifier
        /// computes, at every size.
        #[test]
        fn the_frontier_root_is_the_tree_root(n in 0u64..300) {
            let mut frontier = Frontier::default();
            let mut tree = Tree::new();
            for leaf in leaves(n) {
                frontier.push(&leaf);
                tree.push(leaf);
            }
            prop_assert_eq!(frontier.root(), tree.root());
            let stored = Frontier::from_parts(frontier.size(), frontier.nodes().to_vec());
            prop_assert_eq!(stored, Ok(frontier));
        }

        /// A proven entry verifies; any other leaf or position does not.
        #[test]
        fn inclusion_proofs_hold_only_for_their_leaf(n in 1u64..200, pick in any::<u64>()) {
            let all = leaves(n);
            let mut tree = Tree::new();
            all.iter().for_each(|leaf| tree.push(*leaf));
            let index = pick % n;
            let path = tree.inclusion(index).expect("in range");
            let root = tree.root();
            prop_assert!(verify_inclusion(&root, n, &all[index as usize], index + 1, &path).is_ok());
            let other = Hash::of(b"forged");
            prop_assert!(verify_inclusion(&root, n, &other, index + 1, &path).is_err());
            if n > 1 {
                let elsewhere = (index + 1) % n;
                prop_assert!(verify_inclusion(&root, n, &all[index as usize], elsewhere + 1, &path).is_err());
            }
        }

        /// A longer log extends its prefix; a rewritten prefix is not extended.
        #[test]
        fn consistency_proofs_catch_rewrites(n in 2u64..200, cut in any::<u64>(), flip in any::<u64>()) {
            let all = leaves(n);
            let old_size = 1 + cut % (n - 1);
            let mut old = Tree::new();
            all[..old_size as usize].iter().for_each(|leaf| old.push(*leaf));
            let mut new = Tree::new();
            all.iter().for_each(|leaf| new.push(*leaf));
            let path = new.consistency(old_size).expect("a prefix");
            prop_assert!(verify_consistency((&old.root(), old_size), (&new.root(), n), &path).is_ok());

            let mut rewritten = all.clone();
            rewritten[(flip % old_size) as usize] = Hash::of(b"rewritten");
            let mut forged = Tree::new();
            rewritten.iter().for_each(|leaf| forged.push(*leaf));
            let path = forged.consistency(old_size).expect("a prefix");
            prop_assert!(verify_consistency((&old.root(), old_size), (&forged.root(), n), &path).is_err());
        }
    }

    #[test]
    fn out_of_range_proofs_are_refused_not_panicked() {
        let mut tree = Tree::new();
        assert_eq!(tree.inclusion(0), None);
        assert_eq!(tree.consistency(1), None);
        tree.push([7; 32].into());
        assert_eq!(tree.inclusion(1), None);
        assert_eq!(tree.consistency(0), None);
        assert_eq!(tree.consistency(2), None);
        assert!(Frontier::from_parts(3, vec![Hash::ZERO]).is_err());
        let leaf = Hash::from([7; 32]);
        assert!(verify_inclusion(&tree.root(), 1, &leaf, 0, &[]).is_err());
        assert!(verify_inclusion(&tree.root(), 1, &leaf, 1, &[leaf]).is_err());
    }
}
