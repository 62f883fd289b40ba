//! What an operator grants one tool beyond computing.
//!
//! The default is nothing: no directories, no network, no environment. A
//! grant is checked against the tool's world when the tool is loaded, so a
//! grant the tool cannot use is an error, not a silent no-op.

use crate::approvals::GrantBinding;
use crate::egress::NetworkGrant;
use crate::vault::CredentialBinding;
use crate::vocabulary::World;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Access to a granted directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirAccess {
    /// Read files and list directories.
    ReadOnly,
    /// Also create, write, rename and delete.
    ReadWrite,
}

impl DirAccess {
    /// `ro` or `rw`.
    pub fn as_str(self) -> &'static str {
        match self {
            DirAccess::ReadOnly => "ro",
            DirAccess::ReadWrite => "rw",
        }
    }
}

/// One host directory made visible to a `files`-world tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    host: PathBuf,
    guest: String,
    access: DirAccess,
}

impl DirGrant {
    /// Grants `host` to the tool, where it appears as the preopen `guest`
    /// (e.g. `/data`).
    pub fn new(host: impl Into<PathBuf>, guest: impl Into<String>, access: DirAccess) -> Self {
        Self {
            host: host.into(),
            guest: guest.into(),
            access,
        }
    }

    /// The host directory.
    pub fn host(&self) -> &Path {
        &self.host
    }

    /// The name the guest sees.
    pub fn guest(&self) -> &str {
        &self.guest
    }

    /// Read-only or read-write.
    pub fn access(&self) -> DirAccess {
        self.access
    }
}

/// Everything granted to one tool. [`Grants::none`] is the default.
///
/// # Examples
///
/// ```
/// use airlock::{DirAccess, DirGrant, Grants};
///
/// let grants = Grants::none().with_dir(DirGrant::new("./data", "/data", DirAccess::ReadOnly));
/// assert_eq!(grants.dirs().len(), 1);
/// assert!(Grants::none().dirs().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Grants {
    name: Option<String>,
    dirs: Vec<DirGrant>,
    network: Arc<NetworkGrant>,
    credentials: Arc<[CredentialBinding]>,
    sensitive: bool,
}

impl Grants {
    /// Nothing granted.
    pub fn none() -> Self {
        Self::default()
    }

    /// The operator's name for the tool: what policies see as
    /// `resource.name` and approvals show. Without it, the name the
    /// component declares in `describe()` is used, which is its author's
    /// claim: policies that must not be fooled by a look-alike should name
    /// tools here (as `airlock.toml` does) or match `resource.sha256`.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The operator's name for the tool, if given.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Adds a directory grant.
    pub fn with_dir(mut self, dir: DirGrant) -> Self {
        self.dirs.push(dir);
        self
    }

    /// Sets the network grant (what the tool may reach over HTTP).
    pub fn with_network(mut self, grant: NetworkGrant) -> Self {
        self.network = Arc::new(grant);
        self
    }

    /// Adds a credential binding: the host injects the named vault secret
    /// into matching requests. Gives the tool the `secrets` capability
    /// (sensitive). Checked at load: the secret must exist, its scope must
    /// cover the tool, and the binding's origins must be inside the network
    /// grant.
    pub fn with_credential(mut self, binding: CredentialBinding) -> Self {
        let mut all = self.credentials.to_vec();
        all.push(binding);
        self.credentials = all.into();
        self
    }

    /// The credential bindings, in order.
    pub fn credentials(&self) -> &[CredentialBinding] {
        &self.credentials
    }

    pub(crate) fn credentials_arc(&self) -> Arc<[CredentialBinding]> {
        Arc::clone(&self.credentials)
    }

    /// Marks the tool sensitive whatever its capabilities, so that running it
    /// needs an approval under the default policies.
    pub fn mark_sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Whether the operator marked the tool sensitive.
    pub fn is_marked_sensitive(&self) -> bool {
        self.sensitive
    }

    /// One line for an approver: what the tool would run with.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .network
            .rules()
            .rules()
            .iter()
            .map(|rule| format!("network: {rule}"))
            .collect();
        parts.extend(
            self.credentials
                .iter()
                .map(|c| format!("credential `{}` in {}", c.secret(), c.header())),
        );
        parts.extend(self.dirs.iter().map(|d| {
            format!(
                "dir {} ({}): {}",
                d.guest,
                d.access.as_str(),
                d.host.display()
            )
        }));
        if parts.is_empty() {
            "nothing granted".to_string()
        } else {
            parts.join("; ")
        }
    }

    /// Everything an approval binds about these grants, one canonical line
    /// per part: every rule field except where it was written, the budgets,
    /// each credential binding with its origins, each directory with its
    /// mode, and the sensitive mark.
    pub(crate) fn binding_parts(&self) -> Vec<String> {
        let network = &self.network;
        let mut parts: Vec<String> = network
            .rules()
            .rules()
            .iter()
            .map(|rule| {
                format!(
                    "rule {:?} ports {:?} schemes {:?} private {}",
                    rule.matcher, rule.ports, rule.schemes, rule.private
                )
            })
            .collect();
        parts.push(format!("budgets {:?}", network.budgets()));
        parts.extend(self.credentials.iter().map(|c| format!("credential {c:?}")));
        parts.extend(self.dirs.iter().map(|d| format!("dir {d:?}")));
        parts.push(format!("sensitive {}", self.sensitive));
        parts
    }

    /// What an approval of a tool run with these grants binds.
    pub fn binding(&self) -> GrantBinding {
        GrantBinding::new(self.summary(), self.binding_parts())
    }

    /// The directory grants, in order.
    pub fn dirs(&self) -> &[DirGrant] {
        &self.dirs
    }

    /// The network grant; empty (nothing reachable) unless one was set.
    pub fn network(&self) -> &NetworkGrant {
        &self.network
    }

    pub(crate) fn network_arc(&self) -> Arc<NetworkGrant> {
        Arc::clone(&self.network)
    }

    /// Checks the grants against the tool's world and the file system, and
    /// resolves host paths once so later invocations open exactly these
    /// directories.
    pub(crate) fn resolve(&self, world: World) -> Result<ResolvedGrants, GrantError> {
        if !self.dirs.is_empty() && !world.uses_filesystem() {
            return Err(GrantError::DirsNotUsable { world });
        }
        if !self.network.is_empty() && !world.uses_network() {
            return Err(GrantError::NetworkNotUsable { world });
        }
        if let Some((binding, origin)) = self
            .credentials
            .iter()
            .find_map(|b| b.outside(&self.network).map(|origin| (b, origin)))
        {
            return Err(GrantError::CredentialOutsideGrant {
                secret: binding.secret().to_string(),
                origin,
            });
        }
        let mut resolved = Vec::with_capacity(self.dirs.len());
        #[cfg(target_os = "linux")]
        let mut opened = Vec::with_capacity(self.dirs.len());
        for dir in &self.dirs {
            if dir.guest.is_empty() || dir.guest.contains('\0') {
                return Err(GrantError::BadGuestPath {
                    guest: dir.guest.clone(),
                });
            }
            if resolved.iter().any(|d: &DirGrant| d.guest == dir.guest) {
                return Err(GrantError::DuplicateGuestPath {
                    guest: dir.guest.clone(),
                });
            }
            let host = dir
                .host
                .canonicalize()
                .map_err(|source| GrantError::HostDir {
                    path: dir.host.clone(),
                    source,
                })?;
            if !host.is_dir() {
                return Err(GrantError::NotADirectory { path: host });
            }
            #[cfg(target_os = "linux")]
            opened.push(Arc::new(airlock_sandbox::pinned::open_dir(&host).map_err(
                |e| GrantError::HostDir {
                    path: dir.host.clone(),
                    source: std::io::Error::other(e.to_string()),
                },
            )?));
            resolved.push(DirGrant {
                host,
                ..dir.clone()
            });
        }
        Ok(ResolvedGrants {
            grants: Grants {
                name: self.name.clone(),
                dirs: resolved,
                network: Arc::clone(&self.network),
                credentials: Arc::clone(&self.credentials),
                sensitive: self.sensitive,
            },
            #[cfg(target_os = "linux")]
            opened,
        })
    }
}

/// Grants that passed [`Grants::resolve`]: they fit the tool's world, host
/// paths are canonical directories and guest names are unique. On Linux
/// each directory is also held open from then on (opened without following
/// a link), and every invocation's preopen is that very directory: a link
/// put in place of the path later (by another tool that can write above
/// it) changes nothing.
#[derive(Clone, Debug)]
pub(crate) struct ResolvedGrants {
    grants: Grants,
    #[cfg(target_os = "linux")]
    opened: Vec<Arc<std::os::fd::OwnedFd>>,
}

impl ResolvedGrants {
    /// The checked grants.
    pub(crate) fn grants(&self) -> &Grants {
        &self.grants
    }

    /// Where an invocation opens directory grant `index` from: the held
    /// directory through `/proc/self/fd` (Linux), else its path.
    pub(crate) fn preopen_path(&self, index: usize) -> PathBuf {
        #[cfg(target_os = "linux")]
        if let Some(fd) = self.opened.get(index) {
            use std::os::fd::AsRawFd;
            return PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        }
        self.grants
            .dirs
            .get(index)
            .map(|d| d.host.clone())
            .unwrap_or_default()
    }
}

/// A grant that cannot be honoured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// Directories granted to a tool that does not import `wasi:filesystem`.
    #[error(
        "directory grants need a tool in the `files` or `network-files` world, \
         but this tool is in `{world}`: remove the grant"
    )]
    DirsNotUsable {
        /// The tool's world.
        world: World,
    },
    /// A network grant for a tool that does not import `wasi:http/outgoing-handler`.
    #[error(
        "a network grant needs a tool in the `network` or `network-files` world, \
         but this tool is in `{world}`: remove the grant"
    )]
    NetworkNotUsable {
        /// The tool's world.
        world: World,
    },
    /// A credential binding names an origin the network grant does not allow.
    #[error(
        "the binding of secret `{secret}` reaches {origin}, which the tool's network grant does not allow: \
         add it to the grant or remove it from the binding"
    )]
    CredentialOutsideGrant {
        /// The bound secret.
        secret: String,
        /// The origin outside the grant.
        origin: String,
    },
    /// A granted host directory cannot be opened.
    #[error("granted directory {}: {source}", path.display())]
    HostDir {
        /// The path as granted.
        path: PathBuf,
        /// Why it cannot be used.
        source: std::io::Error,
    },
    /// A granted host path is not a directory.
    #[error("granted path {} is not a directory: grant its parent directory instead", path.display())]
    NotADirectory {
        /// The resolved path.
        path: PathBuf,
    },
    /// The guest-side name is empty or contains NUL.
    #[error("guest path {guest:?} is not usable: give a name such as `/data`")]
    BadGuestPath {
        /// The name as granted.
        guest: String,
    },
    /// Two grants share a guest-side name.
    #[error("guest path `{guest}` is granted twice: give each directory its own name")]
    DuplicateGuestPath {
        /// The repeated name.
        guest: String,
    },
}

impl GrantError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            GrantError::DirsNotUsable { .. } | GrantError::NetworkNotUsable { .. } => {
                "grant_not_usable"
            }
            GrantError::HostDir { .. } | GrantError::NotADirectory { .. } => {
                "grant_dir_unavailable"
            }
            GrantError::BadGuestPath { .. } | GrantError::DuplicateGuestPath { .. } => {
                "grant_invalid"
            }
            GrantError::CredentialOutsideGrant { .. } => "credential_outside_grant",
        }
    }
}
