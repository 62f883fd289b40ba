//! [`TrustFile`]: the certificates a `strict` sandbox trusts for the TLS
//! its egress proxy terminates, in a file of their own. Only the proxy's
//! CA certificate (and, when some origins stay blind tunnels, the host's
//! roots) is in it, never a key: the CA's key exists only in the proxy's
//! memory. The sandbox sees the file read-only.

use crate::egress::EgressProxy;
use std::io::Write;
use std::path::Path;

/// A private temporary file holding a proxy's trust bundle; removed when
/// dropped, so keep it as long as the sandbox that reads it.
pub(crate) struct TrustFile {
    file: tempfile::NamedTempFile,
}

impl TrustFile {
    /// The bundle `proxy`'s sandbox must trust, written out; `None` when
    /// the proxy terminates no TLS (no credential bound, no
    /// `intercept = "all"`).
    pub(crate) fn for_proxy(proxy: &EgressProxy) -> std::io::Result<Option<Self>> {
        let Some(bundle) = proxy.trust_bundle() else {
            return Ok(None);
        };
        let mut file = tempfile::Builder::new()
            .prefix("airlock-trust-")
            .suffix(".pem")
            .tempfile()?;
        file.write_all(bundle.as_bytes())?;
        file.flush()?;
        // The sandbox may run as another user than airlock; the bundle is
        // certificates only, public by nature. Nobody else can replace it
        // (made exclusively, in a sticky directory).
        std::fs::set_permissions(
            file.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )?;
        Ok(Some(Self { file }))
    }

    /// Where it is on the host.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }
}
