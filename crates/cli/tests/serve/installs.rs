//! Hosted servers from ordinary installs: a virtual environment made by
//! `python3 -m venv` (its interpreter a symbolic link to the system's), a
//! `node_modules/.bin` command, and a server that dies before it answers
//! `initialize`, reported with its exit status and its last stderr lines.

use airlock::servers::{HostedServer, ServerError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `python3 -m venv` in `dir`: symbolic links to the system interpreter
/// (the default on Linux), no pip; with `packages`, a `.pth` file puts
/// those site-packages on its path, as an installed package would be.
fn symlinked_venv(dir: &Path, packages: Option<&Path>) -> PathBuf {
    let venv = dir.join("venv");
    let made = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .expect("python3 -m venv");
    assert!(made.status.success(), "{}", super::fixture::printed(&made));
    let python = venv.join("bin/python");
    let link = std::fs::read_link(&python).expect("the interpreter is a link");
    assert!(!link.as_os_str().is_empty(), "{}", python.display());
    if let Some(packages) = packages {
        std::fs::write(
            site_packages(&venv).join("shared.pth"),
            format!("{}\n", packages.display()),
        )
        .expect(".pth");
    }
    venv
}

/// `VENV/lib/python3.X/site-packages`.
fn site_packages(venv: &Path) -> PathBuf {
    std::fs::read_dir(venv.join("lib"))
        .expect("lib")
        .filter_map(Result::ok)
        .find(|entry| entry.file_name().to_string_lossy().starts_with("python3"))
        .expect("lib/python3.X")
        .path()
        .join("site-packages")
}

/// The site-packages of the venv `.ci/install` made for hosted servers.
fn server_packages() -> PathBuf {
    site_packages(&super::hosted::server_python())
}

async fn load(text: &str) -> HostedServer {
    let config =
        airlock::Config::from_toml(text, "airlock.toml", Path::new("/")).expect("valid config");
    let host = airlock::Host::builder().build().expect("host");
    host.load_server(config.servers()[0].clone())
        .expect("loads")
}

fn entry(command: &Path, args: &[&Path], fs_read: &[&Path]) -> String {
    named_entry("s", command, args, fs_read)
}

/// A `[[servers]]` entry `name` running `command` with path `args`,
/// `fs_read` granted, and no bytecode written.
pub(super) fn named_entry(name: &str, command: &Path, args: &[&Path], fs_read: &[&Path]) -> String {
    let list = |paths: &[&Path]| {
        paths
            .iter()
            .map(|p| format!("{:?}", p.display().to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[[servers]]\nname = {name:?}\ncommand = {:?}\nargs = [{}]\nfs_read = [{}]\nenv = {{ PYTHONDONTWRITEBYTECODE = \"1\" }}\n",
        command.display().to_string(),
        list(args),
        list(fs_read),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_in_an_ordinary_venv_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::hosted::open_to_everyone(dir.path(), 0o755);
    let packages = server_packages();
    let venv = symlinked_venv(dir.path(), Some(&packages));
    let script = super::hosted::fixture_dir().join("fetch_and_read.py");
    let server = load(&entry(
        &venv.join("bin/python"),
        &[&script],
        &[
            &venv,
            &super::hosted::server_python(),
            &super::hosted::fixture_dir(),
        ],
    ))
    .await;
    // It runs at the venv's own path (so Python finds `pyvenv.cfg`), and
    // is known by the interpreter the links end in.
    assert_eq!(server.program(), venv.join("bin/python"));
    let interpreter = std::fs::canonicalize("/usr/bin/python3").expect("python3");
    assert_eq!(server.program_target(), interpreter);
    assert!(
        server.status().mounted.is_empty(),
        "everything it needs is granted or a system file: {:?}",
        server.status().mounted
    );
    let tools = server.start().await.expect("starts");
    assert!(tools.iter().any(|t| t.name == "read"), "{tools:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_before_initialize_says_how_and_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    super::hosted::open_to_everyone(dir.path(), 0o755);
    // The same venv without the package: Python's own traceback says so.
    let venv = symlinked_venv(dir.path(), None);
    let script = super::hosted::fixture_dir().join("fetch_and_read.py");
    let server = load(&entry(
        &venv.join("bin/python"),
        &[&script],
        &[&venv, &super::hosted::fixture_dir()],
    ))
    .await;
    let error = server.start().await.expect_err("no mcp package");
    assert_eq!(error.code(), "server_exited", "{error}");
    let ServerError::Exited { how, stderr, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(how, "exited with status 1", "{error}");
    assert!(
        stderr
            .last()
            .is_some_and(|line| line.contains("ModuleNotFoundError: No module named 'mcp'")),
        "{error}"
    );
    // The operator's error quotes it; what an agent is told does not.
    assert!(error.to_string().contains("ModuleNotFoundError"), "{error}");
    assert!(
        !error.for_agent().contains("ModuleNotFoundError"),
        "{}",
        error.for_agent()
    );
    assert!(
        server
            .status()
            .last_error
            .is_some_and(|e| e.contains("No module named 'mcp'")),
        "{:?}",
        server.status()
    );

    // One that says nothing on stdout: its init_timeout ends it, and the
    // error quotes what it did say.
    let silent = load(&format!(
        "{}init_timeout = \"1s\"\n",
        entry(
            Path::new("/bin/sh"),
            &[
                Path::new("-c"),
                Path::new("echo waiting for nothing >&2; exec sleep 60")
            ],
            &[],
        )
    ))
    .await;
    let error = silent.start().await.expect_err("silent");
    let ServerError::InitTimeout { stderr, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(stderr, &["waiting for nothing"], "{error}");
    assert!(
        !error.for_agent().contains("waiting for nothing"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_modules_bin_command_starts() {
    let modules = super::hosted::npm_servers();
    let command = modules.join(".bin/mcp-server-filesystem");
    assert!(
        std::fs::symlink_metadata(&command)
            .expect("the .bin entry")
            .file_type()
            .is_symlink(),
        "{}",
        command.display()
    );
    let workspace = tempfile::tempdir().expect("workspace");
    super::hosted::open_to_everyone(workspace.path(), 0o755);
    let server = load(&entry(
        &command,
        &[workspace.path()],
        &[&modules, workspace.path()],
    ))
    .await;
    assert_eq!(server.program(), command, "it runs as the link");
    assert!(server.status().mounted.is_empty(), "{:?}", server.status());
    let tools = server.start().await.expect("starts");
    assert!(
        tools.iter().any(|t| t.name == "read_text_file"),
        "{tools:?}"
    );
    server.stop().await;
}
