//! Paths as the protected-path rules compare them: resolved (absolute,
//! links that exist seen through, `.` and `..` gone) and, where they exist,
//! by identity (device and inode), so a bind-mount alias of a protected
//! directory is the same directory.

use std::path::{Component, Path, PathBuf};

/// Which file a path names now: device and inode (`None`: nothing there).
pub type Identity = Option<(u64, u64)>;

/// The identity of `path`, not following a final symbolic link.
pub(crate) fn identity(path: &Path) -> Identity {
    of(std::fs::symlink_metadata(path))
}

/// The identity of what `path` leads to (links followed).
pub fn target_identity(path: &Path) -> Identity {
    of(std::fs::metadata(path))
}

fn of(meta: std::io::Result<std::fs::Metadata>) -> Identity {
    let meta = meta.ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Some((0, 0))
    }
}

/// `path` and each of its ancestors, each with its identity, nearest first.
pub(crate) fn lineage(path: &Path) -> Vec<(PathBuf, (u64, u64))> {
    path.ancestors()
        .filter_map(|p| identity(p).map(|id| (p.to_path_buf(), id)))
        .collect()
}

/// `path` made absolute, `.` and `..` taken out by name: where it is
/// written to be, links not followed.
pub(crate) fn lexical(path: &Path) -> PathBuf {
    walk(path, false)
}

/// `path` made absolute and resolved as the kernel would walk it: each
/// component that exists is seen through (links followed), so `..` goes up
/// from where a link led; what does not exist is kept by name.
pub fn resolved(path: &Path) -> PathBuf {
    walk(path, true)
}

/// `path` made absolute and walked component by component, `.` dropped
/// and `..` going up; `through_links`: each existing component is seen
/// through as it is reached.
fn walk(path: &Path, through_links: bool) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if through_links && let Ok(canonical) = std::fs::canonicalize(&out) {
                    out = canonical;
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_through_links_and_dots_and_keep_what_does_not_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        std::fs::create_dir(&real).expect("real");
        std::os::unix::fs::symlink(&real, dir.path().join("link")).expect("link");
        let canonical = real.canonicalize().expect("canonical");
        assert_eq!(
            resolved(&dir.path().join("link/./x/../y")),
            canonical.join("y")
        );
        assert_eq!(identity(&dir.path().join("link/missing")), None);
        let lineage = lineage(&canonical);
        assert_eq!(lineage[0].0, canonical);
        assert_eq!(
            lineage.last().map(|(p, _)| p.as_path()),
            Some(Path::new("/"))
        );
    }
}
