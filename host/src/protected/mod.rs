//! Protected paths: airlock's own files, which no tool or hosted server may
//! see. The state directory (journal, approvals, host key, vault, compile
//! cache and its key, the console's key, the default operator socket), a
//! separate compile cache, the operator socket, the configuration file, the
//! policy directory, the console's certificate files and the database
//! password file.
//!
//! A directory grant that lies inside one (or is one) is refused at load,
//! naming both. A grant that contains one is refused too, unless the
//! operator granted the parent on purpose (`hide_airlock_files = true` on a
//! native tool or hosted server): then the sandbox covers each protected
//! path inside it (see [`airlock_sandbox::Hidden`]). A component's
//! directory grant is a WASI preopen, which cannot hide part of itself, so
//! for components a containing grant is always refused.
//!
//! The system's and the user's runtime directories (`/run`, `/proc`,
//! `/sys`, `/dev`, `$XDG_RUNTIME_DIR`) hold every local service's sockets
//! (a user's systemd and D-Bus among them: a way out of any sandbox), so a
//! grant at, inside or around one is always refused; `/tmp` and `/var/tmp`
//! hold other programs' sockets too, so a grant of or around them is
//! refused, one inside them is not.
//!
//! Grants are compared by name and by identity (device and inode), so a
//! bind-mount alias of a protected directory is that directory. Each
//! protected path's identity is recorded when it is added; a sandbox is not
//! started when a protected path it would show is no longer that one.

mod hide;
pub(crate) mod path;

pub use path::{Identity, resolved, target_identity};
use path::{identity, lineage};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What a protected path is, for messages and status output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProtectedKind {
    /// The state directory.
    StateDir,
    /// A compile cache outside the state directory.
    CompileCache,
    /// The operator socket.
    OperatorSocket,
    /// The configuration file (`airlock.toml`).
    Config,
    /// The Cedar policy directory.
    Policies,
    /// The console's TLS certificate or key, when the operator named them.
    ConsoleKey,
    /// The shared database's password file.
    DatabasePassword,
    /// The `airlock` program itself.
    Program,
    /// A runtime directory of the system or the user: every local
    /// service's sockets.
    RuntimeDir,
    /// A directory every local user shares (`/tmp`): a grant of it shows
    /// other programs' sockets, one inside it does not.
    SharedTmp,
}

impl ProtectedKind {
    /// How messages name it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::StateDir => "state directory",
            Self::CompileCache => "compile cache",
            Self::OperatorSocket => "operator socket",
            Self::Config => "configuration file",
            Self::Policies => "policy directory",
            Self::ConsoleKey => "console certificate or key",
            Self::DatabasePassword => "database password file",
            Self::Program => "program",
            Self::RuntimeDir => "runtime directory (every local service's sockets)",
            Self::SharedTmp => "shared temporary directory (other programs' sockets)",
        }
    }

    /// Whether a grant inside it is refused.
    fn refuses_inside(self) -> bool {
        self != Self::SharedTmp
    }

    /// Whether a sandbox may hide it in a grant that contains it on
    /// purpose (`hide_airlock_files`); a runtime directory, never.
    pub(crate) fn hideable(self) -> bool {
        !matches!(self, Self::RuntimeDir | Self::SharedTmp)
    }
}

/// One protected path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProtectedPath {
    /// What it is.
    pub kind: ProtectedKind,
    /// Where it is: absolute, with every symbolic link that exists resolved.
    pub path: PathBuf,
    /// Which file it was when added (none: it did not exist yet, or it is
    /// a file replaced in the ordinary course, like a config an editor
    /// saves by renaming).
    #[serde(skip)]
    identity: Identity,
    /// The path as configured, which a symbolic link leads to
    /// [`ProtectedPath::path`] from: no sandbox may see it either, and it
    /// cannot be covered (a cover would follow the link).
    #[serde(skip)]
    via_link: bool,
}

impl ProtectedPath {
    /// Whether a sandbox may hide it in a grant that contains it on
    /// purpose.
    fn hideable(&self) -> bool {
        self.kind.hideable() && !self.via_link
    }
}

/// Why a grant was refused. Always reason code `protected_path`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectedError {
    /// The grant is a protected path or lies inside one.
    #[error(
        "the grant {} lies inside the {} {}: a tool never sees airlock's own files or the \
         system's sockets; grant a directory outside it (or keep airlock's state elsewhere \
         with --state-dir)",
        grant.display(), protected.kind.describe(), protected.path.display()
    )]
    Inside {
        /// The grant, as resolved.
        grant: PathBuf,
        /// What it lies inside.
        protected: ProtectedPath,
    },
    /// The grant contains a protected path, and nothing may hide it.
    #[error(
        "the grant {} contains the {} {}: {}",
        grant.display(), protected.kind.describe(), protected.path.display(),
        hint(protected, *can_hide)
    )]
    Contains {
        /// The grant, as resolved.
        grant: PathBuf,
        /// What it contains.
        protected: ProtectedPath,
        /// Whether `hide_airlock_files = true` would allow it.
        can_hide: bool,
    },
    /// A protected path a sandbox would show is not the one recorded at
    /// start: moved, replaced or removed since, so it cannot be covered
    /// where it is; the run is refused.
    #[error(
        "the {} {} is not where, or what, it was when airlock started (moved, replaced or removed): a sandbox that could reach it is not started; restart airlock once it is back",
        protected.kind.describe(), protected.path.display()
    )]
    Moved {
        /// Which.
        protected: ProtectedPath,
    },
}

/// What to do about a grant that contains a protected path.
fn hint(protected: &ProtectedPath, can_hide: bool) -> &'static str {
    if protected.via_link {
        return "grant a narrower directory: a symbolic link leads to one of airlock's files \
                from there, and no sandbox may see or replace it";
    }
    match (protected.kind.hideable(), can_hide) {
        (false, _) => "grant a narrower directory: no sandbox may see it",
        (true, true) => {
            "grant a narrower directory, move airlock's file out of it, or set \
             `hide_airlock_files = true` to grant the parent on purpose (the sandbox then \
             hides airlock's files)"
        }
        (true, false) => {
            "grant a narrower directory or move airlock's file out of it (a component's \
             directory grant cannot hide part of itself)"
        }
    }
}

impl ProtectedError {
    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Moved { .. } => "protected_path_moved",
            Self::Inside { .. } | Self::Contains { .. } => "protected_path",
        }
    }
}

/// The protected paths of one host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtectedPaths {
    paths: Vec<ProtectedPath>,
}

/// Whether a grant may contain protected paths (then hidden by the sandbox).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Containing {
    /// Refused (components, and sandboxed programs by default).
    Refuse,
    /// Allowed; the sandbox hides them (`hide_airlock_files = true`).
    Hide,
}

impl ProtectedPaths {
    /// Adds `path` as a `kind`, recording which file it is now. It need
    /// not exist yet.
    pub fn add(&mut self, kind: ProtectedKind, path: &Path) {
        let written = path::lexical(path);
        let path = resolved(path);
        // Only directories that must stay put are held to what they were.
        let identity = match kind {
            ProtectedKind::StateDir | ProtectedKind::CompileCache => identity(&path),
            _ => None,
        };
        if written != path && !self.paths.iter().any(|p| p.path == written) {
            self.paths.push(ProtectedPath {
                kind,
                path: written,
                identity: None,
                via_link: true,
            });
        }
        if !self.paths.iter().any(|p| p.path == path) {
            self.paths.push(ProtectedPath {
                kind,
                path,
                identity,
                via_link: false,
            });
        }
    }

    /// Adds the runtime directories of the system and of this user, which
    /// every host protects.
    pub(crate) fn add_runtime_dirs(&mut self) {
        for dir in ["/run", "/var/run", "/proc", "/sys", "/dev"] {
            self.add(ProtectedKind::RuntimeDir, Path::new(dir));
        }
        for dir in ["/tmp", "/var/tmp"] {
            self.add(ProtectedKind::SharedTmp, Path::new(dir));
        }
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
        {
            self.add(ProtectedKind::RuntimeDir, &dir);
        }
    }

    /// Every protected path.
    pub fn iter(&self) -> impl Iterator<Item = &ProtectedPath> {
        self.paths.iter()
    }

    /// Whether `path` is a protected path, or lies inside one whose
    /// inside is protected too (the shared `/tmp` is not: only granting
    /// it whole is refused).
    pub fn covers(&self, path: &Path) -> bool {
        let path = resolved(path);
        self.paths
            .iter()
            .any(|p| path == p.path || (p.kind.refuses_inside() && path.starts_with(&p.path)))
    }

    /// Checks directory grants: refused if one lies inside a protected
    /// path, or contains one unless `containing` is [`Containing::Hide`].
    pub fn check<'a>(
        &self,
        grants: impl IntoIterator<Item = &'a Path>,
        containing: Containing,
    ) -> Result<(), ProtectedError> {
        for grant in grants {
            let grant = resolved(grant);
            let grant_lineage = lineage(&grant);
            for protected in &self.paths {
                // Inside: by name, or one of the grant's ancestors is the
                // protected directory under another name.
                let inside = grant.starts_with(&protected.path)
                    || protected
                        .identity
                        .is_some_and(|id| grant_lineage.iter().any(|(_, a)| *a == id));
                if inside && protected.kind.refuses_inside() {
                    return Err(ProtectedError::Inside {
                        grant,
                        protected: protected.clone(),
                    });
                }
                let contains = (protected.path.starts_with(&grant) && !inside)
                    || grant == protected.path
                    || identity(&grant)
                        .is_some_and(|id| lineage(&protected.path).iter().any(|(_, a)| *a == id));
                let may_hide = containing == Containing::Hide && protected.hideable();
                if contains && !may_hide {
                    return Err(ProtectedError::Contains {
                        grant,
                        protected: protected.clone(),
                        can_hide: false,
                    });
                }
            }
        }
        Ok(())
    }

    /// As [`ProtectedPaths::check`] for a sandboxed program, whose refusal
    /// of a containing grant says how to grant it on purpose.
    pub(crate) fn check_sandboxed<'a>(
        &self,
        grants: impl IntoIterator<Item = &'a Path>,
        hide: bool,
    ) -> Result<(), ProtectedError> {
        let containing = if hide {
            Containing::Hide
        } else {
            Containing::Refuse
        };
        self.check(grants, containing).map_err(|e| match e {
            ProtectedError::Contains {
                grant, protected, ..
            } => ProtectedError::Contains {
                can_hide: protected.hideable(),
                grant,
                protected,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protected(state: &Path) -> ProtectedPaths {
        let mut paths = ProtectedPaths::default();
        paths.add(ProtectedKind::StateDir, state);
        paths
    }

    #[test]
    fn a_grant_inside_is_refused_and_one_containing_needs_hiding() {
        let dir = tempfile::tempdir().expect("tempdir");
        let project = dir.path().join("project");
        let state = project.join(".airlock");
        std::fs::create_dir_all(state.join("cache")).expect("dirs");
        let paths = protected(&state);

        let inside = paths
            .check([state.join("cache").as_path()], Containing::Hide)
            .expect_err("inside");
        assert!(matches!(inside, ProtectedError::Inside { .. }), "{inside}");
        assert_eq!(inside.code(), "protected_path");
        let message = inside.to_string();
        assert!(
            message.contains("cache") && message.contains("state directory"),
            "{message}"
        );

        // `project/.` and `project/sub/..` are the project.
        for written in [project.join("."), project.join("sub/..")] {
            let contains = paths
                .check_sandboxed([written.as_path()], false)
                .expect_err("contains");
            assert!(
                matches!(contains, ProtectedError::Contains { can_hide: true, .. }),
                "{contains}"
            );
            assert!(
                contains.to_string().contains("hide_airlock_files"),
                "{contains}"
            );
        }
        paths
            .check_sandboxed([project.as_path()], true)
            .expect("granted on purpose");
        let component = paths
            .check([project.as_path()], Containing::Refuse)
            .expect_err("a component cannot hide");
        assert!(
            !component.to_string().contains("hide_airlock_files"),
            "{component}"
        );
        paths
            .check([dir.path().join("elsewhere").as_path()], Containing::Refuse)
            .expect("unrelated");
        // A sibling whose name starts the same is not inside.
        paths
            .check(
                [project.join(".airlock-data").as_path()],
                Containing::Refuse,
            )
            .expect("a sibling");
    }

    #[test]
    fn a_symbolic_link_to_a_protected_path_is_seen_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("state");
        let link = dir.path().join("innocent");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&state, &link).expect("symlink");
        #[cfg(unix)]
        {
            let refused = protected(&state)
                .check([link.as_path()], Containing::Hide)
                .expect_err("through the link");
            assert!(
                matches!(refused, ProtectedError::Inside { .. }),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_system_s_runtime_directories_are_never_granted_whole() {
        let mut paths = ProtectedPaths::default();
        paths.add_runtime_dirs();
        // Around or at a runtime directory: refused, even on purpose.
        for grant in ["/", "/run", "/var", "/tmp", "/proc", "/dev"] {
            let refused = paths
                .check_sandboxed([Path::new(grant)], true)
                .expect_err(grant);
            assert_eq!(refused.code(), "protected_path", "{grant}");
            assert!(
                !refused.to_string().contains("hide_airlock_files"),
                "no way to hide the system's sockets: {refused}"
            );
        }
        // Inside one: refused, but for a shared temporary directory.
        for grant in ["/run/user", "/proc/self", "/dev/shm"] {
            assert!(
                matches!(
                    paths.check_sandboxed([Path::new(grant)], true),
                    Err(ProtectedError::Inside { .. })
                ),
                "{grant}"
            );
        }
        let dir = tempfile::tempdir().expect("a directory under /tmp");
        paths
            .check_sandboxed([dir.path()], false)
            .expect("a directory inside /tmp is a directory like any");
    }

    #[cfg(unix)]
    #[test]
    fn a_protected_file_reached_through_a_link_cannot_be_granted_even_on_purpose() {
        // The operator's config is a link into a dotfiles directory: the
        // link itself must stay out of reach, or a tool could replace it.
        let dir = tempfile::tempdir().expect("tempdir");
        let (project, dotfiles) = (dir.path().join("project"), dir.path().join("dotfiles"));
        std::fs::create_dir_all(&project).expect("project");
        std::fs::create_dir_all(&dotfiles).expect("dotfiles");
        std::fs::write(dotfiles.join("airlock.toml"), "").expect("config");
        std::os::unix::fs::symlink(dotfiles.join("airlock.toml"), project.join("airlock.toml"))
            .expect("link");
        let mut paths = ProtectedPaths::default();
        paths.add(ProtectedKind::Config, &project.join("airlock.toml"));
        // The link's directory: never, even on purpose.
        let refused = paths
            .check_sandboxed([project.as_path()], true)
            .expect_err("the link");
        assert_eq!(refused.code(), "protected_path", "{refused}");
        // The file's own directory: as any protected file's.
        paths
            .check_sandboxed([dotfiles.as_path()], false)
            .expect_err("contains the config");
        paths
            .check_sandboxed([dotfiles.as_path()], true)
            .expect("granted on purpose: covered");
        assert!(
            paths
                .check_sandboxed([project.as_path()], true)
                .expect_err("the link")
                .to_string()
                .contains("symbolic link"),
        );
    }
}
