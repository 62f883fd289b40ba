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

use serde::Serialize;
use std::path::{Component, Path, PathBuf};

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
        }
    }
}

/// One protected path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProtectedPath {
    /// What it is.
    pub kind: ProtectedKind,
    /// Where it is: absolute, with every symbolic link that exists resolved.
    pub path: PathBuf,
}

/// Why a grant was refused. Always reason code `protected_path`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectedError {
    /// The grant is a protected path or lies inside one.
    #[error(
        "the grant {} lies inside airlock's {} {}: a tool never sees airlock's own files; \
         grant a directory outside it (or keep airlock's state elsewhere with --state-dir)",
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
        "the grant {} contains airlock's {} {}: {}",
        grant.display(), protected.kind.describe(), protected.path.display(),
        if *can_hide {
            "grant a narrower directory, move airlock's file out of it, or set \
             `hide_airlock_files = true` to grant the parent on purpose (the sandbox then \
             hides airlock's files)"
        } else {
            "grant a narrower directory or move airlock's file out of it (a component's \
             directory grant cannot hide part of itself)"
        }
    )]
    Contains {
        /// The grant, as resolved.
        grant: PathBuf,
        /// What it contains.
        protected: ProtectedPath,
        /// Whether `hide_airlock_files = true` would allow it.
        can_hide: bool,
    },
}

impl ProtectedError {
    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        "protected_path"
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
    /// Adds `path` as a `kind`. It need not exist yet.
    pub fn add(&mut self, kind: ProtectedKind, path: &Path) {
        let path = resolved(path);
        if !self.paths.iter().any(|p| p.path == path) {
            self.paths.push(ProtectedPath { kind, path });
        }
    }

    /// Every protected path.
    pub fn iter(&self) -> impl Iterator<Item = &ProtectedPath> {
        self.paths.iter()
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
            for protected in &self.paths {
                if grant.starts_with(&protected.path) {
                    return Err(ProtectedError::Inside {
                        grant,
                        protected: protected.clone(),
                    });
                }
                if containing == Containing::Refuse && protected.path.starts_with(&grant) {
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
    pub fn check_sandboxed<'a>(
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
                grant,
                protected,
                can_hide: true,
            },
            other => other,
        })
    }

    /// `plan` with every existing protected path inside one of its mounts
    /// hidden. Applied to every sandboxed run whatever was checked at
    /// load, so a protected path that appeared inside a grant since stays
    /// out of sight too.
    pub fn hide_in(&self, mut plan: airlock_sandbox::Plan) -> airlock_sandbox::Plan {
        let mounts: Vec<(PathBuf, PathBuf)> = plan
            .mounts
            .iter()
            .map(|mount| (resolved(&mount.host), mount.sandbox.clone()))
            .collect();
        for protected in &self.paths {
            // One inside another hidden path is hidden with it (and its
            // cover could not be made inside the read-only cover anyway).
            let nested = self.paths.iter().any(|outer| {
                outer.path != protected.path && protected.path.starts_with(&outer.path)
            });
            if nested {
                continue;
            }
            // A path that does not exist has nothing to hide (and a cover
            // would create it in a writable grant).
            let Ok(meta) = std::fs::symlink_metadata(&protected.path) else {
                continue;
            };
            // Under every mount that shows it, wherever each shows it.
            for (host, sandbox) in &mounts {
                if let Ok(rest) = protected.path.strip_prefix(host)
                    && !rest.as_os_str().is_empty()
                {
                    plan = plan.hide(protected.path.clone(), sandbox.join(rest), meta.is_dir());
                }
            }
        }
        plan
    }
}

/// `path` made absolute, with its longest existing prefix canonicalised
/// (so a symbolic link to a protected path is seen through) and `.` and
/// `..` removed from the rest.
pub fn resolved(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = std::fs::canonicalize(existing) {
            let mut out = canonical;
            for part in rest.iter().rev() {
                push_normal(&mut out, part);
            }
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(Component::Normal(name));
                existing = parent;
            }
            _ => break,
        }
    }
    let mut out = PathBuf::new();
    for part in absolute.components() {
        push_normal(&mut out, &part);
    }
    out
}

fn push_normal(out: &mut PathBuf, part: &Component<'_>) {
    match part {
        Component::CurDir => {}
        Component::ParentDir => {
            out.pop();
        }
        other => out.push(other.as_os_str()),
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
    fn only_existing_paths_inside_a_mount_are_hidden() {
        let dir = tempfile::tempdir().expect("tempdir");
        let project = dir.path().join("project");
        std::fs::create_dir_all(project.join(".airlock/cache")).expect("state");
        std::fs::write(project.join("airlock.toml"), "").expect("config");
        let mut paths = protected(&project.join(".airlock"));
        paths.add(ProtectedKind::CompileCache, &project.join(".airlock/cache"));
        paths.add(ProtectedKind::Config, &project.join("airlock.toml"));
        paths.add(ProtectedKind::Policies, &project.join("policies"));
        paths.add(ProtectedKind::OperatorSocket, &dir.path().join("op.sock"));
        let plan = paths.hide_in(airlock_sandbox::Plan::new("/bin/true").mount(
            &project,
            &project,
            airlock_sandbox::Access::ReadOnly,
        ));
        let hidden: Vec<(PathBuf, PathBuf, bool)> = plan
            .hidden
            .iter()
            .map(|h| (h.host.clone(), h.sandbox.clone(), h.dir))
            .collect();
        let canonical = resolved(&project);
        assert_eq!(
            hidden,
            [
                (canonical.join(".airlock"), project.join(".airlock"), true),
                (
                    canonical.join("airlock.toml"),
                    project.join("airlock.toml"),
                    false
                )
            ]
        );
    }
}
