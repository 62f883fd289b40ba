//! A hosted server's command as it must run: at the path the operator
//! wrote (or `PATH` found), not at the file its links end in, so a
//! `python3 -m venv` interpreter (`venv/bin/python` → `/usr/bin/python3`)
//! still finds its `pyvenv.cfg` and packages, and a `node_modules/.bin`
//! script its package. The server is known by the SHA-256 of the file the
//! links end in. Each link, and that file, must be visible in the sandbox:
//! links no grant and no system directory shows are made again inside it
//! (as read at load: the sandbox never follows a link on the host), the
//! file is bound read-only, and `airlock servers status` lists them.

use crate::protected::path::{Identity, identity, lexical};
use std::path::{Path, PathBuf};

/// Directories every sandbox shows read-only (bubblewrap's system
/// directories).
const SHOWN: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The most links followed before giving up (as the kernel's `ELOOP`).
const MAX_LINKS: usize = 40;

/// A command, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Program {
    /// The path the sandbox runs.
    pub(crate) run: PathBuf,
    /// The file every link ends in (what is digested).
    pub(crate) target: PathBuf,
    /// Links no grant or system directory shows: where each is, and what
    /// it points to (as read at load).
    pub(crate) links: Vec<(PathBuf, PathBuf)>,
    /// The target, when no grant or system directory shows it.
    pub(crate) file: Option<PathBuf>,
    /// The way from `run` to `target`, as walked at load.
    way: Way,
}

/// The way from a path to the file it ends in: every link on it (where it
/// is and what it reads), the real directory each link is in, by name and
/// identity (a directory link on the way swapped, or directories swapped
/// by rename, change it while every link reads the same), and the file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Way {
    hops: Vec<(PathBuf, PathBuf)>,
    dirs: Vec<(PathBuf, Identity)>,
    target: PathBuf,
}

impl Program {
    /// Whether the way from `run` to `target` is still what it was at
    /// load: the same links, reading the same, ending at the same file. A
    /// tool that can write a server's directory could otherwise point the
    /// command elsewhere for the server's next start.
    pub(crate) fn unchanged(&self) -> Result<(), String> {
        let way = walk(&self.run).map_err(|e| e.to_string())?;
        if way != self.way {
            return Err(format!(
                "its links now lead from {} to {} (through {}), not to {} as at load",
                self.run.display(),
                way.target.display(),
                way.dirs
                    .iter()
                    .map(|(dir, _)| dir.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.target.display()
            ));
        }
        Ok(())
    }

    /// What the sandbox is given beyond its grants, for status and checks.
    pub(crate) fn extra(&self) -> Vec<PathBuf> {
        self.links
            .iter()
            .map(|(at, _)| at.clone())
            .chain(self.file.clone())
            .collect()
    }
}

/// Resolves `command` (absolute, or a bare name already found on `PATH`)
/// for a sandbox that shows `granted` directories.
/// The way from `run` to the file it ends in.
fn walk(run: &Path) -> std::io::Result<Way> {
    let mut way = Way {
        hops: Vec::new(),
        dirs: Vec::new(),
        target: PathBuf::new(),
    };
    let mut hop = run.to_path_buf();
    for _ in 0..MAX_LINKS {
        let base = hop.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = std::fs::canonicalize(&base)?;
        let id = identity(&dir);
        way.dirs.push((dir, id));
        let Ok(next) = std::fs::read_link(&hop) else {
            way.target = std::fs::canonicalize(run)?;
            return Ok(way);
        };
        way.hops.push((hop.clone(), next.clone()));
        hop = lexical(&base.join(next));
    }
    Err(std::io::Error::other("too many symbolic links"))
}

/// Resolves `command` (absolute, or a bare name already found on `PATH`)
/// for a sandbox that shows `granted` directories.
pub(crate) fn resolve(command: &Path, granted: &[PathBuf]) -> std::io::Result<Program> {
    let run = lexical(command);
    let way = walk(&run)?;
    let granted: Vec<PathBuf> = granted
        .iter()
        .flat_map(|dir| [lexical(dir), std::fs::canonicalize(dir).unwrap_or_default()])
        .filter(|dir| !dir.as_os_str().is_empty())
        .collect();
    let shown = |path: &Path| {
        SHOWN.iter().any(|dir| path.starts_with(dir))
            || granted.iter().any(|dir| path.starts_with(dir))
    };
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (at, reads) in &way.hops {
        if !shown(at) && !links.iter().any(|(seen, _)| seen == at) {
            links.push((at.clone(), reads.clone()));
        }
    }
    let file = (!shown(&way.target)).then(|| way.target.clone());
    Ok(Program {
        run,
        target: way.target.clone(),
        links,
        file,
        way,
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_venv_interpreter_runs_at_its_own_path_and_needs_nothing_more() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("venv/bin");
        std::fs::create_dir_all(&bin).expect("bin");
        symlink("/bin/sh", bin.join("python3")).expect("link");
        symlink("python3", bin.join("python")).expect("link");
        let venv = dir.path().join("venv");
        let program = resolve(&bin.join("python"), std::slice::from_ref(&venv)).expect("resolves");
        assert_eq!(program.run, bin.join("python"), "not the file it ends in");
        assert_eq!(
            program.target,
            std::fs::canonicalize("/bin/sh").expect("sh")
        );
        assert!(program.extra().is_empty(), "{program:?}");
    }

    #[test]
    fn links_outside_every_grant_are_made_again_and_the_file_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tools = dir.path().join("tools");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&tools).expect("tools");
        std::fs::create_dir_all(&elsewhere).expect("elsewhere");
        let real = elsewhere.join("server");
        std::fs::write(&real, "#!/bin/sh\n").expect("script");
        symlink(&real, tools.join("hop")).expect("link");
        symlink("hop", tools.join("server")).expect("link");
        let program =
            resolve(&tools.join("server"), std::slice::from_ref(&tools)).expect("resolves");
        let real = std::fs::canonicalize(&real).expect("real");
        assert_eq!(program.target, real);
        assert!(program.links.is_empty(), "the grant shows both links");
        assert_eq!(program.file, Some(real.clone()), "only what no grant shows");
        // Granted nothing: both links are made again, as they read.
        let bare = resolve(&tools.join("server"), &[]).expect("resolves");
        assert_eq!(
            bare.links,
            [
                (tools.join("server"), PathBuf::from("hop")),
                (tools.join("hop"), elsewhere.join("server"))
            ]
        );
        assert_eq!(bare.extra().len(), 3);
    }

    #[test]
    fn a_link_repointed_after_load_is_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("venv/bin");
        std::fs::create_dir_all(&bin).expect("bin");
        symlink("/bin/sh", bin.join("python")).expect("link");
        let program = resolve(&bin.join("python"), &[dir.path().join("venv")]).expect("resolves");
        program.unchanged().expect("as loaded");
        std::fs::remove_file(bin.join("python")).expect("remove");
        std::fs::write(dir.path().join("mine"), "#!/bin/sh\n").expect("theirs");
        symlink(dir.path().join("mine"), bin.join("python")).expect("repointed");
        let changed = program.unchanged().expect_err("repointed");
        assert!(changed.contains("not to"), "{changed}");
    }

    /// Two release directories whose `bin/server` links read the same
    /// (`/bin/sh`): only the directory a link is in tells them apart.
    fn releases() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for release in ["v1", "v2"] {
            let bin = dir.path().join(release).join("bin");
            std::fs::create_dir_all(&bin).expect("bin");
            symlink("/bin/sh", bin.join("server")).expect("link");
        }
        dir
    }

    #[test]
    fn a_directory_link_swapped_on_the_way_is_noticed() {
        let dir = releases();
        symlink("v1", dir.path().join("current")).expect("current");
        let run = dir.path().join("current/bin/server");
        let program = resolve(&run, &[]).expect("resolves");
        program.unchanged().expect("as loaded");
        std::fs::remove_file(dir.path().join("current")).expect("remove");
        symlink("v2", dir.path().join("current")).expect("swapped");
        let changed = program.unchanged().expect_err("swapped");
        assert!(changed.contains("v2"), "{changed}");
    }

    #[test]
    fn directories_swapped_by_rename_on_the_way_are_noticed() {
        // The same names after the swap: only the identity differs.
        let dir = releases();
        let program = resolve(&dir.path().join("v1/bin/server"), &[]).expect("resolves");
        program.unchanged().expect("as loaded");
        std::fs::rename(dir.path().join("v1"), dir.path().join("old")).expect("rename");
        std::fs::rename(dir.path().join("v2"), dir.path().join("v1")).expect("rename");
        program.unchanged().expect_err("another directory");
    }

    #[test]
    fn a_loop_of_links_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        symlink("b", dir.path().join("a")).expect("link");
        symlink("a", dir.path().join("b")).expect("link");
        assert!(resolve(&dir.path().join("a"), &[]).is_err());
    }
}
