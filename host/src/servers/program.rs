//! A hosted server's command as it must run: at the path the operator
//! wrote (or `PATH` found), not at the file its links end in, so a
//! `python3 -m venv` interpreter (`venv/bin/python` → `/usr/bin/python3`)
//! still finds its `pyvenv.cfg` and packages, and a `node_modules/.bin`
//! script its package. The server is known by the SHA-256 of the file the
//! links end in. Each link, and that file, must be visible in the sandbox:
//! links no grant and no system directory shows are made again inside it
//! (as read at load: the sandbox never follows a link on the host), the
//! file is bound read-only, and `airlock servers status` lists them.

use crate::protected::path::lexical;
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
    /// Every link on the way from `run` to `target`, as read at load.
    hops: Vec<(PathBuf, PathBuf)>,
}

impl Program {
    /// Whether the way from `run` to `target` is still what it was at
    /// load: the same links, reading the same, ending at the same file. A
    /// tool that can write a server's directory could otherwise point the
    /// command elsewhere for the server's next start.
    pub(crate) fn unchanged(&self) -> Result<(), String> {
        let (hops, target) = walk(&self.run).map_err(|e| e.to_string())?;
        if hops != self.hops || target != self.target {
            return Err(format!(
                "its links now lead from {} to {}, not to {} as at load",
                self.run.display(),
                target.display(),
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
/// The links on the way from `run` (each where it is and what it reads)
/// and the file they end in.
fn walk(run: &Path) -> std::io::Result<(Vec<(PathBuf, PathBuf)>, PathBuf)> {
    let mut hops = Vec::new();
    let mut hop = run.to_path_buf();
    for _ in 0..MAX_LINKS {
        let Ok(next) = std::fs::read_link(&hop) else {
            return Ok((hops, std::fs::canonicalize(run)?));
        };
        hops.push((hop.clone(), next.clone()));
        let base = hop.parent().map(Path::to_path_buf).unwrap_or_default();
        hop = lexical(&base.join(next));
    }
    Err(std::io::Error::other("too many symbolic links"))
}

pub(crate) fn resolve(command: &Path, granted: &[PathBuf]) -> std::io::Result<Program> {
    let run = lexical(command);
    let (hops, target) = walk(&run)?;
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
    for (at, reads) in &hops {
        if !shown(at) && !links.iter().any(|(seen, _)| seen == at) {
            links.push((at.clone(), reads.clone()));
        }
    }
    let file = (!shown(&target)).then(|| target.clone());
    Ok(Program {
        run,
        target,
        links,
        file,
        hops,
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

    #[test]
    fn a_loop_of_links_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        symlink("b", dir.path().join("a")).expect("link");
        symlink("a", dir.path().join("b")).expect("link");
        assert!(resolve(&dir.path().join("a"), &[]).is_err());
    }
}
