//! A real OCI registry on loopback for the registry tests: Debian's
//! `docker-registry` (the CNCF distribution registry), started on a port
//! the kernel picks, with its storage in a temporary directory; components
//! are pushed with the `oras` client from PyPI, both installed by
//! `.ci/install`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The config type of a WASI component artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The layer type of a component.
pub const WASM_LAYER: &str = "application/wasm";

/// A running registry; stopped (killed) when dropped.
pub struct TestRegistry {
    storage: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    address: String,
}

impl TestRegistry {
    /// Starts a registry on 127.0.0.1 and waits until it listens.
    pub fn start() -> Self {
        let storage = tempfile::tempdir().expect("registry storage");
        let config = storage.path().join("config.yml");
        let mut registry = Self {
            config,
            storage,
            child: None,
            address: String::new(),
        };
        registry.write_config("127.0.0.1:0");
        registry.run();
        // Later restarts keep the port, so references stay valid.
        let address = registry.address.clone();
        registry.write_config(&address);
        registry
    }

    fn write_config(&self, address: &str) {
        let root = self.storage.path().join("data");
        std::fs::write(
            &self.config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
                root.display()
            ),
        )
        .expect("write the registry's config");
    }

    fn run(&mut self) {
        let program = which("docker-registry").unwrap_or_else(|| {
            panic!("docker-registry is missing: run `bash .ci/test` (the README's test command), which installs it")
        });
        let mut child = Command::new(program)
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        // The registry logs its bound address once it listens.
        let address = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("docker-registry exited before it listened");
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .split(|c: char| c == '"' || c.is_whitespace())
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.address = address;
        self.child = Some(child);
    }

    /// `HOST:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `oci://HOST:PORT/REPO_TAG`.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("oci://{}/{repo_tag}", self.address)
    }

    /// Pushes `file` as `REPO:TAG` with one layer of `layer_type` and a
    /// config of `config_type`; returns the manifest digest.
    pub fn push_as(
        &self,
        repo_tag: &str,
        file: &Path,
        layer_type: &str,
        config_type: &str,
    ) -> String {
        let file = file.as_os_str();
        let args = [
            self.address.as_ref(),
            repo_tag.as_ref(),
            file,
            layer_type.as_ref(),
            config_type.as_ref(),
        ];
        python("oras_push.py", &args)
    }

    /// Pushes the component `file` as `REPO:TAG` in the WASI component
    /// artifact layout; returns the manifest digest.
    pub fn push(&self, repo_tag: &str, file: &Path) -> String {
        self.push_as(repo_tag, file, WASM_LAYER, WASM_CONFIG)
    }

    /// Runs `tests/python/sign.py COMMAND REGISTRY REPO DIGEST ARGS…`
    /// (see that script): a cosign key-pair signature (`cosign KEY`), a
    /// Sigstore bundle with a key (`bundle-key KEY`) or a keyless one
    /// (`bundle-keyless PKI IDENTITY ISSUER`) of manifest `digest`.
    pub fn sign(&self, command: &str, repo: &str, digest: &str, args: &[&str]) {
        self.sign_raw(command, &[&[repo, digest], args].concat());
    }

    /// Runs `tests/python/sign.py COMMAND REGISTRY ARGS…` for the commands
    /// that take no digest (`copy-tag REPO SOURCE TARGET`).
    pub fn sign_raw(&self, command: &str, args: &[&str]) {
        let all: Vec<&OsStr> = [command, self.address.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .map(OsStr::new)
            .collect();
        python("sign.py", &all);
    }

    /// Overwrites the stored blob `digest` (`sha256:…`) with `bytes`, as a
    /// compromised registry or a bad disk would.
    pub fn corrupt_blob(&self, digest: &str, bytes: &[u8]) {
        let hex = digest.trim_start_matches("sha256:");
        let path = self
            .storage
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data");
        assert!(path.exists(), "no stored blob at {}", path.display());
        std::fs::write(&path, bytes).expect("overwrite the blob");
    }

    /// Stops the registry (its storage stays, for [`TestRegistry::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes an ECDSA P-256 key pair `PREFIX.key` / `PREFIX.pub` with openssl
/// (as `cosign generate-key-pair` would).
pub fn keygen(prefix: &Path) {
    python("sign.py", &["keygen".as_ref(), prefix.as_os_str()]);
}

/// `PKI/trusted_root_with_log.json`: the test PKI's trusted root, also
/// listing a transparency log, so a bundle without a log entry fails.
pub fn root_with_log(pki: &Path) {
    python("sign.py", &["root-with-log".as_ref(), pki.as_os_str()]);
}

/// Runs `tests/python/SCRIPT ARGS…` with the Python that has `oras`, and
/// returns what it printed; the test fails with its stderr if it fails.
fn python(script: &str, args: &[&OsStr]) -> String {
    let output = Command::new(oras_python())
        .arg(crate::workspace_root().join("tests/python").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The Python with `oras` that `.ci/install` prepares.
fn oras_python() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    let python = target.join("python-oras/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash .ci/test` (the README's test command), which installs oras",
        python.display()
    );
    python
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}
