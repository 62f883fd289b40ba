//! Paired devices: the browsers that may use the console. An operator asks
//! for a one-time pairing code over the operator socket; the browser that
//! enters it in time becomes `Device::"ID"`, in that operator, and gets a
//! cookie of which only the SHA-256 is kept. Codes live in memory only
//! (a restart voids them), are single use, expire, and wrong ones are
//! rate-limited; devices live in the state database until revoked.

use super::agents::{BearerSecret, digest as sha256_hex, random_token};
mod kept;

use airlock::store::{Store, StoreError};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use zeroize::Zeroizing;

/// What every device cookie starts with.
pub const COOKIE_PREFIX: &str = "airlock_device_";

/// How long a pairing code lasts, at most (and by default).
pub const PAIRING_CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Wrong codes tolerated within [`ATTEMPT_WINDOW`]; after that every code
/// is refused until the window has passed. Eight characters of a
/// 32-letter alphabet (40 bits) at five guesses a minute is out of reach.
pub const MAX_WRONG_CODES: usize = 5;

/// The window [`MAX_WRONG_CODES`] counts over.
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);

/// Letters of a code: no 0/O or 1/I to misread.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 8;

/// The longest device label kept.
const MAX_LABEL: usize = 64;

/// Why a pairing, lookup or revocation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The code is unknown, expired or used (the browser is not told which).
    #[error(
        "that pairing code is wrong, expired or already used: ask the operator for a new one (`airlock devices pair`)"
    )]
    CodeRefused,
    /// Too many wrong codes lately.
    #[error(
        "too many wrong pairing codes: try again in {} seconds",
        retry_after.as_secs().max(1)
    )]
    TooManyAttempts {
        /// When codes are accepted again.
        retry_after: Duration,
    },
    /// The asked lifetime is too long or zero.
    #[error("a pairing code lasts between 1 second and 5 minutes, not {}", humantime::format_duration(*.0))]
    Lifetime(Duration),
    /// No device with that id.
    #[error("no device `{id}`: `airlock devices list` shows them")]
    NotFound {
        /// The id given.
        id: String,
    },
    /// The device was revoked already.
    #[error("device `{id}` was revoked already")]
    Revoked {
        /// The id.
        id: String,
    },
    /// The system's random source failed.
    #[error("the system random source failed: {0}")]
    Random(#[source] getrandom::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DeviceError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            DeviceError::CodeRefused => "pairing_code_refused",
            DeviceError::TooManyAttempts { .. } => "pairing_rate_limited",
            DeviceError::Lifetime(_) => "pairing_lifetime_invalid",
            DeviceError::NotFound { .. } => "device_not_found",
            DeviceError::Revoked { .. } => "device_revoked",
            DeviceError::Random(_) => "random_failed",
            DeviceError::Store(e) => e.code(),
        }
    }
}

/// One paired device (never its cookie).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Device {
    /// Its id: the principal is `Device::"ID"`.
    pub id: String,
    /// The operator who paired it; the device is in `Operator::"NAME"`.
    pub operator: String,
    /// What the browser was called when paired (for the operator).
    pub label: String,
    /// When it was paired (RFC 3339).
    pub paired: String,
    /// When it last loaded a page (RFC 3339).
    pub last_seen: Option<String>,
    /// When it was revoked (RFC 3339), if it was.
    pub revoked: Option<String>,
}

/// A pairing code, as shown to the operator once.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PairingCode {
    /// `ABCD-EFGH`.
    pub code: String,
    /// The operator the device will belong to.
    pub operator: String,
    /// When it stops working (RFC 3339).
    pub expires: String,
}

/// A device's cookie value: shown to its browser once.
pub type DeviceCookie = BearerSecret;

struct Pending {
    operator: String,
    expires: Instant,
}

#[derive(Default)]
struct Codes {
    /// By the SHA-256 of the normalised code.
    pending: HashMap<String, Pending>,
    /// When recent wrong codes came.
    wrong: VecDeque<Instant>,
}

/// Where devices are kept: the state directory's SQLite database, or the
/// database replicas share. Each change commits with its journal `record`.
pub trait DeviceStore: Send + Sync {
    /// Journals `record` (a code was issued: nothing is stored for it).
    fn record(&self, record: &Value) -> Result<(), StoreError>;

    /// Stores a newly paired `device` with its cookie's digest.
    fn insert(
        &self,
        device: &Device,
        cookie_sha256: &str,
        record: &Value,
    ) -> Result<(), StoreError>;

    /// The unrevoked device whose cookie has this digest, marked `seen`.
    fn seen(&self, cookie_sha256: &str, seen: &str) -> Result<Option<Device>, StoreError>;

    /// Whether device `id` exists and is not revoked.
    fn is_active(&self, id: &str) -> Result<bool, StoreError>;

    /// Every device, newest first.
    fn all(&self) -> Result<Vec<Device>, StoreError>;

    /// Marks device `id` revoked at `when` `by` someone, journaling
    /// `record(device)`; refuses an unknown or already revoked device.
    fn revoke(
        &self,
        id: &str,
        when: &str,
        by: &str,
        record: &dyn Fn(&Device) -> Value,
    ) -> Result<Result<Device, DeviceError>, StoreError>;
}

/// The devices of one store, and the codes waiting to pair one (in this
/// process's memory: a code pairs only through the replica that issued
/// it).
#[derive(Clone)]
pub struct Devices {
    store: Arc<dyn DeviceStore>,
    codes: Arc<Mutex<Codes>>,
}

/// `ab cd-efgh` → `ABCDEFGH`.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A label fit to show: printable, bounded.
fn clean_label(label: &str) -> String {
    let label: String = label
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_LABEL)
        .collect();
    match label.trim() {
        "" => "browser".to_string(),
        label => label.to_string(),
    }
}

impl Devices {
    /// The devices kept in `store`.
    pub fn new(store: Arc<dyn DeviceStore>) -> Self {
        Self {
            store,
            codes: Arc::new(Mutex::new(Codes::default())),
        }
    }

    /// The devices kept in whichever store a host opened.
    pub fn in_store(store: &Store) -> Self {
        Self::new(Arc::new(kept::Kept(store.clone())))
    }

    fn codes(&self) -> std::sync::MutexGuard<'_, Codes> {
        self.codes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new one-time code that pairs a browser to `operator` until
    /// `lifetime` from `now` (journaled, without the code).
    pub fn issue(
        &self,
        operator: &str,
        lifetime: Duration,
        now: Instant,
    ) -> Result<PairingCode, DeviceError> {
        if lifetime.is_zero() || lifetime > PAIRING_CODE_LIFETIME {
            return Err(DeviceError::Lifetime(lifetime));
        }
        let mut random = Zeroizing::new([0u8; CODE_LEN]);
        getrandom::fill(random.as_mut()).map_err(DeviceError::Random)?;
        let letters: String = random
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
            .collect();
        let expires = humantime::format_rfc3339_seconds(SystemTime::now() + lifetime).to_string();
        self.store.record(
            &json!({ "change": "code_issued", "operator": operator, "expires": expires }),
        )?;
        let mut codes = self.codes();
        codes.pending.retain(|_, p| p.expires > now);
        codes.pending.insert(
            sha256_hex(&letters),
            Pending {
                operator: operator.to_string(),
                expires: now + lifetime,
            },
        );
        Ok(PairingCode {
            code: format!("{}-{}", &letters[..4], &letters[4..]),
            operator: operator.to_string(),
            expires,
        })
    }

    /// Pairs the browser that entered `code` at `now`: the code is used up,
    /// the device recorded and journaled. Wrong codes count towards the
    /// rate limit, and while it is exceeded every code is refused.
    pub fn redeem(
        &self,
        code: &str,
        label: &str,
        now: Instant,
    ) -> Result<(Device, DeviceCookie), DeviceError> {
        let operator = {
            let mut codes = self.codes();
            while codes
                .wrong
                .front()
                .is_some_and(|at| now.saturating_duration_since(*at) >= ATTEMPT_WINDOW)
            {
                codes.wrong.pop_front();
            }
            if codes.wrong.len() >= MAX_WRONG_CODES {
                let oldest = codes.wrong.front().copied().unwrap_or(now);
                return Err(DeviceError::TooManyAttempts {
                    retry_after: ATTEMPT_WINDOW.saturating_sub(now - oldest),
                });
            }
            match codes.pending.remove(&sha256_hex(&normalise(code))) {
                Some(pending) if pending.expires > now => pending.operator,
                _ => {
                    codes.wrong.push_back(now);
                    return Err(DeviceError::CodeRefused);
                }
            }
        };
        let cookie = random_token(COOKIE_PREFIX).map_err(DeviceError::Random)?;
        let device = Device {
            id: ulid::Ulid::new().to_string(),
            operator,
            label: clean_label(label),
            paired: now_rfc3339(),
            last_seen: None,
            revoked: None,
        };
        let record = json!({
            "change": "paired",
            "device": device.id,
            "operator": device.operator,
            "label": device.label,
        });
        self.store.insert(&device, &sha256_hex(&cookie), &record)?;
        Ok((device, BearerSecret(cookie)))
    }

    /// The unrevoked device a cookie belongs to; marks it seen. Only the
    /// cookie's digest is compared, by equality on a unique index.
    pub fn authenticate(&self, cookie: &str) -> Result<Option<Device>, StoreError> {
        if !cookie.starts_with(COOKIE_PREFIX) {
            return Ok(None);
        }
        self.store.seen(&sha256_hex(cookie), &now_rfc3339())
    }

    /// Whether device `id` is still paired (not revoked).
    pub fn is_active(&self, id: &str) -> Result<bool, StoreError> {
        self.store.is_active(id)
    }

    /// Every device, newest first, revoked ones included.
    pub fn list(&self) -> Result<Vec<Device>, StoreError> {
        self.store.all()
    }

    /// Revokes device `id`, recorded as done `by` (`operator:alice`, or a
    /// device): its cookie stops working at the next request (journaled).
    pub fn revoke(&self, id: &str, by: &str) -> Result<Device, DeviceError> {
        let record = |device: &Device| {
            json!({
                "change": "revoked",
                "device": device.id,
                "operator": device.operator,
                "by": by,
            })
        };
        self.store.revoke(id, &now_rfc3339(), by, &record)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices() -> (tempfile::TempDir, Devices) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::in_state_dir(dir.path()).expect("store");
        (dir, Devices::in_store(&store))
    }

    #[test]
    fn a_code_pairs_one_device_once_before_it_expires() {
        let (_dir, devices) = devices();
        let start = Instant::now();
        let code = devices
            .issue("alice", PAIRING_CODE_LIFETIME, start)
            .expect("issued");
        assert_eq!(code.code.len(), 9, "{}", code.code);
        let typed = code.code.to_lowercase().replace('-', " ");
        let (device, cookie) = devices.redeem(&typed, "laptop", start).expect("paired");
        assert_eq!(device.operator, "alice");
        let seen = devices
            .authenticate(cookie.expose())
            .expect("query")
            .expect("the cookie is the device's");
        assert_eq!(seen.id, device.id);
        assert!(seen.last_seen.is_some());
        assert_eq!(devices.list().expect("list"), [seen]);
        assert!(matches!(
            devices.redeem(&code.code, "again", start),
            Err(DeviceError::CodeRefused)
        ));

        let late = devices
            .issue("alice", Duration::from_secs(60), start)
            .expect("issued");
        assert!(matches!(
            devices.redeem(&late.code, "late", start + Duration::from_secs(60)),
            Err(DeviceError::CodeRefused)
        ));
        assert!(matches!(
            devices.issue("alice", Duration::from_secs(301), start),
            Err(DeviceError::Lifetime(_))
        ));
    }

    #[test]
    fn wrong_codes_lock_out_even_the_right_one_for_a_while() {
        let (_dir, devices) = devices();
        let start = Instant::now();
        let code = devices
            .issue("alice", PAIRING_CODE_LIFETIME, start)
            .expect("issued");
        for _ in 0..MAX_WRONG_CODES {
            assert!(matches!(
                devices.redeem("AAAA-AAAA", "x", start),
                Err(DeviceError::CodeRefused)
            ));
        }
        let locked = devices.redeem(&code.code, "x", start + Duration::from_secs(10));
        let Err(DeviceError::TooManyAttempts { retry_after }) = locked else {
            panic!("not rate-limited: {locked:?}");
        };
        assert_eq!(retry_after, Duration::from_secs(50));
        devices
            .redeem(&code.code, "x", start + ATTEMPT_WINDOW)
            .expect("accepted once the window passed");
    }

    #[test]
    fn a_revoked_device_stops_authenticating() {
        let (dir, devices) = devices();
        let now = Instant::now();
        let code = devices
            .issue("alice", PAIRING_CODE_LIFETIME, now)
            .expect("issued");
        let (device, cookie) = devices
            .redeem(&code.code, "\u{7}phone", now)
            .expect("paired");
        assert_eq!(device.label, "phone");
        assert!(devices.is_active(&device.id).expect("query"));
        devices
            .revoke(&device.id, "operator:alice")
            .expect("revoked");
        assert_eq!(devices.authenticate(cookie.expose()).expect("query"), None);
        assert!(!devices.is_active(&device.id).expect("query"));
        assert!(matches!(
            devices.revoke(&device.id, "operator:alice"),
            Err(DeviceError::Revoked { .. })
        ));
        assert!(matches!(
            devices.revoke("nope", "operator:alice"),
            Err(DeviceError::NotFound { .. })
        ));
        let store = Store::in_state_dir(dir.path()).expect("store");
        let kinds: Vec<String> = airlock::journal::JournalStore::all(&store)
            .expect("journal")
            .into_iter()
            .map(|e| e.payload)
            .collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(
            kinds.iter().all(|p| !p.contains(COOKIE_PREFIX)),
            "{kinds:?}"
        );
    }
}
