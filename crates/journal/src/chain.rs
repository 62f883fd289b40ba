//! The hash chain: canonical JSON, entry hashes, and verification that
//! names the first bad sequence number.

use crate::hash::Hash;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: Hash = Hash::ZERO;

/// JSON with object keys sorted and no insignificant whitespace, so that
/// equal values always hash the same (whatever order the map kept).
pub fn canonical_json(value: &Value) -> String {
    // Serializing a `Value` cannot fail: every key is a string.
    serde_json::to_string(&Canonical(value)).unwrap_or_default()
}

/// A value that serializes with its objects' keys in sorted order.
struct Canonical<'a>(&'a Value);

impl serde::Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap as _, SerializeSeq as _};
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &Canonical(value))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Canonical(item))?;
                }
                out.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

/// What kind of event an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A finished invocation, with its attestation.
    Invocation,
    /// One outgoing request (allowed or denied).
    Egress,
    /// A pending approval was created.
    ApprovalRequested,
    /// An operator decided an approval.
    ApprovalDecided,
    /// Policies were (re)loaded.
    PolicyReload,
    /// A request was denied before any tool ran.
    Denial,
    /// `airlock serve` started, stopped, or reloaded its tools.
    Server,
    /// An agent was added or removed (never its token).
    AgentChanged,
    /// A console pairing code was issued, a device paired, or one revoked
    /// (never a code or a cookie).
    DeviceChanged,
    /// A hosted server's program or tool definition was pinned, changed
    /// from its pin, or an operator decided such a change.
    ServerDefinition,
}

impl EntryKind {
    /// Every kind this build writes, in the order a reader lists them.
    pub const ALL: [EntryKind; 10] = [
        EntryKind::Invocation,
        EntryKind::Egress,
        EntryKind::Denial,
        EntryKind::ApprovalRequested,
        EntryKind::ApprovalDecided,
        EntryKind::DeviceChanged,
        EntryKind::AgentChanged,
        EntryKind::PolicyReload,
        EntryKind::Server,
        EntryKind::ServerDefinition,
    ];

    /// The kind stored under `name`, if this build writes it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Stable name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Invocation => "invocation",
            EntryKind::Egress => "egress",
            EntryKind::ApprovalRequested => "approval_requested",
            EntryKind::ApprovalDecided => "approval_decided",
            EntryKind::PolicyReload => "policy_reload",
            EntryKind::Denial => "denial",
            EntryKind::Server => "server",
            EntryKind::AgentChanged => "agent_changed",
            EntryKind::DeviceChanged => "device_changed",
            EntryKind::ServerDefinition => "server_definition",
        }
    }
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry's kind as read back: one this build writes, or a name it does
/// not know (written by a newer airlock, or by whoever changed the row),
/// kept exactly as stored so that the hash is checked over what is there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StoredKind {
    /// A kind this build writes.
    Known(EntryKind),
    /// A name this build does not write.
    Unknown(String),
}

impl StoredKind {
    /// The kind stored as `name`.
    pub fn parse(name: String) -> Self {
        EntryKind::parse(&name).map_or(StoredKind::Unknown(name), StoredKind::Known)
    }

    /// The name as stored (and hashed).
    pub fn as_str(&self) -> &str {
        match self {
            StoredKind::Known(kind) => kind.as_str(),
            StoredKind::Unknown(name) => name,
        }
    }

    /// The kind, if this build writes it.
    pub fn known(&self) -> Option<EntryKind> {
        match self {
            StoredKind::Known(kind) => Some(*kind),
            StoredKind::Unknown(_) => None,
        }
    }
}

impl From<EntryKind> for StoredKind {
    fn from(kind: EntryKind) -> Self {
        StoredKind::Known(kind)
    }
}

impl std::fmt::Display for StoredKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<EntryKind> for StoredKind {
    fn eq(&self, other: &EntryKind) -> bool {
        self.known() == Some(*other)
    }
}

impl PartialEq<str> for StoredKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for StoredKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for StoredKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for StoredKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(StoredKind::parse)
    }
}

/// An entry about to be appended: what it records, already as canonical
/// JSON. Made by the caller before the journal's writer is reached, so
/// concurrent callers serialise in parallel and the writer only chains,
/// hashes and stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    kind: EntryKind,
    payload: String,
    attestation_id: Option<String>,
}

impl NewEntry {
    /// An entry of `kind` recording `payload`.
    pub fn new(kind: EntryKind, payload: &Value) -> Self {
        let attestation_id = (kind == EntryKind::Invocation)
            .then(|| payload.pointer("/attestation/id").and_then(Value::as_str))
            .flatten()
            .map(str::to_string);
        Self {
            kind,
            payload: canonical_json(payload),
            attestation_id,
        }
    }

    /// What it records.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// The record, as canonical JSON.
    pub fn payload(&self) -> &str {
        &self.payload
    }

    /// The id of the attestation an invocation entry carries.
    pub fn attestation_id(&self) -> Option<&str> {
        self.attestation_id.as_deref()
    }

    /// The entry this becomes at position `seq`, after the entry whose hash
    /// is `prev_hash`, stamped now: what every store appends.
    pub fn chained(&self, seq: u64, prev_hash: Hash) -> Entry {
        let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let hash = entry_hash(seq, &time, self.kind.as_str(), &self.payload, &prev_hash);
        Entry {
            seq,
            time,
            kind: StoredKind::Known(self.kind),
            payload: self.payload.clone(),
            prev_hash,
            hash,
        }
    }
}

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When it was appended (RFC 3339, UTC).
    pub time: String,
    /// What it records.
    pub kind: StoredKind,
    /// The record, as canonical JSON.
    pub payload: String,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: Hash,
    /// This entry's hash: SHA-256 over all of the above.
    pub hash: Hash,
}

impl Entry {
    /// Whether its content still matches its hash.
    pub fn is_intact(&self) -> bool {
        entry_hash(
            self.seq,
            &self.time,
            self.kind.as_str(),
            &self.payload,
            &self.prev_hash,
        ) == self.hash
    }
}

/// The hash of an entry with these fields.
pub fn entry_hash(seq: u64, time: &str, kind: &str, payload: &str, prev_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    // The previous hash is chained as its hex text, as it always was.
    let prev_hash = prev_hash.hex();
    for part in [
        seq.to_string().as_str(),
        time,
        kind,
        payload,
        prev_hash.as_str(),
    ] {
        // Length-prefixed, so no two field splits hash alike.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    Hash::from_hasher(hasher)
}

/// Why a chain does not verify, at the first entry where it breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainBreak {
    /// An entry's content does not match its hash (modified).
    #[error("entry {seq} was modified: its content does not match its hash")]
    Modified {
        /// The entry.
        seq: u64,
    },
    /// An entry does not follow the one before it (deleted, inserted or reordered).
    #[error(
        "entry {seq} does not follow entry {after}: an entry was deleted, inserted or reordered"
    )]
    Broken {
        /// The entry.
        seq: u64,
        /// The entry before it in storage order.
        after: u64,
    },
}

impl ChainBreak {
    /// The first bad sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            ChainBreak::Modified { seq } | ChainBreak::Broken { seq, .. } => *seq,
        }
    }
}

/// Checks entries in storage order; returns how many verified and the head hash.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Result<(u64, Hash), ChainBreak> {
    let mut expected_seq = 1u64;
    let mut prev = GENESIS;
    for entry in entries {
        if entry.seq != expected_seq || entry.prev_hash != prev {
            return Err(ChainBreak::Broken {
                seq: entry.seq,
                after: expected_seq - 1,
            });
        }
        if !entry.is_intact() {
            return Err(ChainBreak::Modified { seq: entry.seq });
        }
        prev = entry.hash;
        expected_seq += 1;
    }
    Ok((expected_seq - 1, prev))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stored_kind_reads_back_as_written_or_as_stored() {
        for kind in EntryKind::ALL {
            let stored = StoredKind::parse(kind.as_str().to_string());
            assert_eq!(stored, StoredKind::Known(kind));
            assert_eq!(stored.as_str(), kind.as_str());
        }
        // A newer airlock's kind, or a changed row: kept as stored, so the
        // hash is checked over what is there, and never taken for a known one.
        let unknown = StoredKind::parse("invocation ".to_string());
        assert_eq!(unknown, StoredKind::Unknown("invocation ".to_string()));
        assert_ne!(unknown, EntryKind::Invocation);
        assert_eq!(unknown.as_str(), "invocation ");
        let json = serde_json::to_string(&unknown).expect("serializes");
        assert_eq!(json, "\"invocation \"");
        let back: StoredKind = serde_json::from_str("\"egress\"").expect("parses");
        assert_eq!(back, EntryKind::Egress);
    }

    #[test]
    fn an_entry_of_an_unknown_kind_verifies_over_its_stored_name() {
        let payload = canonical_json(&json!({}));
        let hash = entry_hash(1, "t", "from_the_future", &payload, &GENESIS);
        let entry = Entry {
            seq: 1,
            time: "t".into(),
            kind: StoredKind::parse("from_the_future".into()),
            payload,
            prev_hash: GENESIS,
            hash,
        };
        assert!(entry.is_intact());
        assert_eq!(verify([&entry]).map(|(n, _)| n), Ok(1));
    }

    fn chain(n: u64) -> Vec<Entry> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let payload = canonical_json(&json!({"n": seq}));
                let hash = entry_hash(seq, "t", "invocation", &payload, &prev);
                let entry = Entry {
                    seq,
                    time: "t".into(),
                    kind: EntryKind::Invocation.into(),
                    payload,
                    prev_hash: prev,
                    hash,
                };
                prev = hash;
                entry
            })
            .collect()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value: Value =
            serde_json::from_str(r#"{"b":1,"a":{"d":[{"z":1,"y":2}],"c":"x"}}"#).expect("json");
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":"x","d":[{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn floats_survive_the_round_trip_through_the_journal() {
        // Durations in egress records are floats; an attestation digests
        // them before they are stored, a verifier after they are read back.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let millis = (seed >> 11) as f64 / (1u64 << 53) as f64 * 5000.0;
            let written = canonical_json(&json!({ "duration_ms": millis }));
            let read: Value = serde_json::from_str(&written).expect("json");
            assert_eq!(canonical_json(&read), written, "{millis:?}");
        }
    }

    #[test]
    fn every_kind_of_tampering_names_the_first_bad_entry() {
        let good = chain(5);
        assert_eq!(verify(&good).map(|(n, _)| n), Ok(5));

        let mut modified = good.clone();
        modified[2].payload = canonical_json(&json!({"n": 99}));
        assert_eq!(verify(&modified), Err(ChainBreak::Modified { seq: 3 }));

        // Entry 2 gone: 3 follows 1.
        let mut deleted = good.clone();
        deleted.remove(1);
        assert_eq!(
            verify(&deleted),
            Err(ChainBreak::Broken { seq: 3, after: 1 })
        );

        // Entries 2 and 3 swapped: 3 follows 1.
        let mut reordered = good.clone();
        reordered.swap(1, 2);
        assert_eq!(
            verify(&reordered),
            Err(ChainBreak::Broken { seq: 3, after: 1 })
        );

        // A forged copy of entry 2 after the real one: a second 2 follows 2.
        let mut inserted = good.clone();
        let mut forged = good[1].clone();
        forged.payload = canonical_json(&json!({"forged": true}));
        inserted.insert(2, forged);
        assert_eq!(
            verify(&inserted),
            Err(ChainBreak::Broken { seq: 2, after: 2 })
        );

        // Entry 5 renumbered 6: 6 follows 4.
        let mut renumbered = good;
        renumbered[4].seq = 6;
        assert_eq!(
            verify(&renumbered),
            Err(ChainBreak::Broken { seq: 6, after: 4 })
        );
    }
}
