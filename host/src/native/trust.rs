//! [`TrustFile`]: the certificates a `strict` sandbox trusts for the TLS
//! its egress proxy terminates, in a file of their own. Only the proxy's
//! CA certificate (and, when some origins stay blind tunnels, the host's
//! roots) is in it, never a key: the CA's key exists only in the proxy's
//! memory. The sandbox sees the file read-only.

use crate::egress::EgressProxy;
use std::io::{Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A trust bundle in a private file: in `trust/` of the state directory
/// (no sandbox sees it: protected path), else in a private temporary
/// directory. Removed when dropped, so keep it as long as the sandbox
/// that reads it.
pub(crate) struct TrustFile {
    file: tempfile::NamedTempFile,
    /// Its path with no link on the way (a sandbox binds it by that).
    canonical: std::path::PathBuf,
    /// The private directory it is in, when it is not the state's.
    _dir: Option<tempfile::TempDir>,
}

impl TrustFile {
    /// The bundle `proxy`'s sandbox must trust, written in `dir` (made
    /// private) or a private temporary directory; `None` when the proxy
    /// terminates no TLS (no credential bound, no `intercept = "all"`).
    pub(crate) fn for_proxy(
        proxy: &EgressProxy,
        dir: Option<&Path>,
    ) -> std::io::Result<Option<Self>> {
        let Some(bundle) = proxy.trust_bundle() else {
            return Ok(None);
        };
        let (dir, own) = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
                (dir.to_path_buf(), None)
            }
            None => {
                let own = tempfile::Builder::new()
                    .prefix("airlock-trust-")
                    .tempdir()?;
                (own.path().to_path_buf(), Some(own))
            }
        };
        let file = tempfile::Builder::new()
            .prefix("trust-")
            .suffix(".pem")
            .tempfile_in(&dir)?;
        let canonical = std::fs::canonicalize(file.path())?;
        let mut trust = Self {
            file,
            canonical,
            _dir: own,
        };
        trust.write(&bundle)?;
        Ok(Some(trust))
    }

    /// Puts `proxy`'s current bundle in the file (after
    /// [`EgressProxy::renew_ca`]), before a new process reads it.
    pub(crate) fn refresh(&mut self, proxy: &EgressProxy) -> std::io::Result<()> {
        match proxy.trust_bundle() {
            Some(bundle) => self.write(&bundle),
            None => Ok(()),
        }
    }

    /// Replaces the content through the descriptor kept open since the
    /// file was made, leaving it readable by all (the sandbox may run as
    /// another user; certificates are public) and writable by nobody.
    fn write(&mut self, bundle: &str) -> std::io::Result<()> {
        let file = self.file.as_file_mut();
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(bundle.as_bytes())?;
        file.flush()?;
        file.set_permissions(std::fs::Permissions::from_mode(0o444))
    }

    /// Where it is on the host.
    pub(crate) fn path(&self) -> &Path {
        &self.canonical
    }
}
