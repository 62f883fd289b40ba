//! Covers for protected paths inside a sandbox's mounts, and the pins that
//! keep them where their covers are.

use super::path::{Identity, identity, lineage};
use super::{ProtectedError, ProtectedPaths};
use airlock_sandbox::{Access, Plan};
use std::path::{Path, PathBuf};

/// Where `protected` (with its lineage) lies under the mount of `host`:
/// the path below the mount, by name or, for a bind-mount alias, by the
/// identity of the mount's root among the protected path's ancestors.
fn below<'a>(
    protected: &'a Path,
    lineage: &'a [(PathBuf, (u64, u64))],
    host: &Path,
    host_identity: Identity,
) -> Option<&'a Path> {
    if let Ok(rest) = protected.strip_prefix(host) {
        return Some(rest);
    }
    let root = host_identity?;
    lineage
        .iter()
        .find(|(_, id)| *id == root)
        .and_then(|(ancestor, _)| protected.strip_prefix(ancestor).ok())
}

impl ProtectedPaths {
    /// `plan` with every protected path inside one of its mounts covered,
    /// and, in a writable mount, every directory between the mount and the
    /// covered path pinned (bound over itself: a mount point cannot be
    /// renamed, so a tool cannot carry a protected path away from under its
    /// cover, and a later sandbox would cover nothing). Applied to every
    /// sandboxed run whatever was checked at load. A protected path that is
    /// no longer the one recorded at start (moved, replaced, gone) where a
    /// mount shows it refuses the run.
    pub(crate) fn hide_in(&self, mut plan: Plan) -> Result<Plan, ProtectedError> {
        let mounts: Vec<(PathBuf, PathBuf, Access, Identity)> = plan
            .mounts
            .iter()
            .map(|m| {
                let host = super::resolved(&m.host);
                let id = identity(&host);
                (host, m.sandbox.clone(), m.access, id)
            })
            .collect();
        let mut pinned: Vec<PathBuf> = Vec::new();
        for protected in &self.paths {
            // Runtime directories are never inside a grant (refused at
            // load), so never covered. One protected path inside another
            // that is covered goes with it (and its cover could not be made
            // inside a read-only cover).
            if !protected.hideable() {
                continue;
            }
            let nested = self.paths.iter().any(|outer| {
                outer.hideable()
                    && outer.path != protected.path
                    && protected.path.starts_with(&outer.path)
            });
            if nested {
                continue;
            }
            let lineage = lineage(&protected.path);
            let now = identity(&protected.path);
            for (host, sandbox, access, host_identity) in &mounts {
                let Some(rest) = below(&protected.path, &lineage, host, *host_identity) else {
                    continue;
                };
                if rest.as_os_str().is_empty() {
                    // The grant is (or now leads to) the protected path
                    // itself: refused at load, so something changed since.
                    return Err(ProtectedError::Inside {
                        grant: host.clone(),
                        protected: protected.clone(),
                    });
                }
                if protected.identity.is_some() && now != protected.identity {
                    return Err(ProtectedError::Moved {
                        protected: protected.clone(),
                    });
                }
                // Nothing there, and nothing was at start: nothing to hide
                // (a cover would create it in a writable grant).
                let Ok(meta) = std::fs::symlink_metadata(&protected.path) else {
                    continue;
                };
                if *access == Access::ReadWrite {
                    let root = protected.path.ancestors().nth(rest.components().count());
                    // Outermost first, so each pin lands on the one before.
                    let ways: Vec<&Path> = rest.ancestors().skip(1).collect();
                    for ancestor in ways.into_iter().rev() {
                        if ancestor.as_os_str().is_empty() {
                            continue;
                        }
                        let Some(root) = root else { continue };
                        let on_host = root.join(ancestor);
                        let inside = sandbox.join(ancestor);
                        // Where a read-only grant nested in this one shows
                        // it, nothing can be renamed, and a writable pin
                        // would make that grant writable.
                        let innermost = mounts
                            .iter()
                            .filter(|(_, shown, _, _)| inside.starts_with(shown))
                            .max_by_key(|(_, shown, _, _)| shown.components().count())
                            .map(|(_, _, access, _)| *access);
                        if innermost == Some(Access::ReadWrite) && !pinned.contains(&on_host) {
                            pinned.push(on_host.clone());
                            plan = plan.pin(on_host, inside, Access::ReadWrite);
                        }
                    }
                }
                plan = plan.hide(protected.path.clone(), sandbox.join(rest), meta.is_dir());
            }
        }
        Ok(plan)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::super::{ProtectedKind, ProtectedPaths, resolved};
    use airlock_sandbox::{Access, Plan};
    use std::path::PathBuf;

    fn project() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let project = resolved(&dir.path().join("project"));
        std::fs::create_dir_all(project.join("deep/down/.airlock/cache")).expect("state");
        std::fs::write(project.join("airlock.toml"), "").expect("config");
        (dir, project)
    }

    #[test]
    fn existing_paths_inside_a_mount_are_covered_and_the_way_to_them_pinned() {
        let (dir, project) = project();
        let mut paths = ProtectedPaths::default();
        // The project is in the temporary directory, itself protected
        // (never covered): what is inside is still covered.
        paths.add_runtime_dirs();
        paths.add(ProtectedKind::SharedTmp, dir.path());
        paths.add(ProtectedKind::StateDir, &project.join("deep/down/.airlock"));
        paths.add(
            ProtectedKind::CompileCache,
            &project.join("deep/down/.airlock/cache"),
        );
        paths.add(ProtectedKind::Config, &project.join("airlock.toml"));
        paths.add(ProtectedKind::Policies, &project.join("policies"));
        paths.add(ProtectedKind::OperatorSocket, &dir.path().join("op.sock"));
        let plan = paths
            .hide_in(Plan::new("/bin/true").mount(&project, "/work", Access::ReadWrite))
            .expect("plan");
        let hidden: Vec<(PathBuf, PathBuf, bool)> = plan
            .hidden
            .iter()
            .map(|h| (h.host.clone(), h.sandbox.clone(), h.dir))
            .collect();
        assert_eq!(
            hidden,
            [
                (
                    project.join("deep/down/.airlock"),
                    "/work/deep/down/.airlock".into(),
                    true
                ),
                (
                    project.join("airlock.toml"),
                    "/work/airlock.toml".into(),
                    false
                )
            ],
            "the cache goes with the state directory; what does not exist is not covered"
        );
        let pins: Vec<(PathBuf, PathBuf)> = plan
            .pins
            .iter()
            .map(|p| (p.host.clone(), p.sandbox.clone()))
            .collect();
        assert_eq!(
            pins,
            [
                (project.join("deep"), "/work/deep".into()),
                (project.join("deep/down"), "/work/deep/down".into())
            ]
        );
        // Read-only, nothing can be renamed: no pins.
        let plan = paths
            .hide_in(Plan::new("/bin/true").mount(&project, "/work", Access::ReadOnly))
            .expect("plan");
        assert!(plan.pins.is_empty(), "{:?}", plan.pins);
    }

    #[test]
    fn a_protected_path_moved_since_start_refuses_the_run() {
        let (_dir, project) = project();
        let state = project.join("deep/down/.airlock");
        let mut paths = ProtectedPaths::default();
        paths.add(ProtectedKind::StateDir, &state);
        // Carried away (a rename above it) and something else put there.
        std::fs::rename(project.join("deep"), project.join("elsewhere")).expect("rename");
        std::fs::create_dir_all(&state).expect("a decoy");
        let refused = paths
            .hide_in(Plan::new("/bin/true").mount(&project, &project, Access::ReadWrite))
            .expect_err("moved");
        assert_eq!(refused.code(), "protected_path_moved", "{refused}");
        // Gone entirely: refused as well.
        std::fs::remove_dir_all(project.join("deep")).expect("remove");
        assert!(
            paths
                .hide_in(Plan::new("/bin/true").mount(&project, &project, Access::ReadOnly))
                .is_err()
        );
        // A plan that does not show it runs.
        paths
            .hide_in(Plan::new("/bin/true").mount(
                project.join("elsewhere"),
                "/e",
                Access::ReadOnly,
            ))
            .expect("not shown");
    }

    #[test]
    fn a_bind_mount_alias_is_seen_by_identity() {
        // An alias of the project by another name: the mount's root has the
        // identity of one of the state directory's ancestors.
        let (_dir, project) = project();
        let mut paths = ProtectedPaths::default();
        paths.add(ProtectedKind::StateDir, &project.join("deep/down/.airlock"));
        let id = super::identity(&project).expect("exists");
        let state = project.join("deep/down/.airlock");
        let lineage = super::lineage(&state);
        let below = super::below(
            &state,
            &lineage,
            std::path::Path::new("/alias/of/project"),
            Some(id),
        );
        assert_eq!(below, Some(std::path::Path::new("deep/down/.airlock")));
    }
}
