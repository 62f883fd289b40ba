//! The console's certificate: the operator's own (`--console-cert`,
//! `--console-key`), or one the server makes once with rcgen and keeps in
//! the state directory, so that a browser told to trust it keeps trusting
//! it across restarts.

use rcgen::PublicKeyData as _;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The generated certificate and key, in the state directory.
pub const CERT_FILE: &str = "console/cert.pem";
/// The generated certificate's private key (owner-only).
pub const KEY_FILE: &str = "console/key.pem";

/// Why the console's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{} holds no {what} in PEM form: {message}", path.display())]
    Pem {
        /// Certificate or key.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        message: String,
    },
    /// The certificate could not be made.
    #[error("making the console's certificate failed: {0}")]
    Generate(String),
    /// rustls refused the certificate and key.
    #[error("the console's certificate and key do not go together: {0}")]
    Config(String),
}

impl TlsError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        "console_tls_invalid"
    }
}

/// Where the console's certificate comes from.
#[derive(Clone, Debug)]
pub enum CertSource {
    /// Generated once into the state directory.
    Generated {
        /// The state directory.
        state_dir: PathBuf,
    },
    /// The operator's PEM files.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
}

/// A ready TLS configuration, and what a browser can check it by.
pub struct ConsoleTls {
    /// rustls' server configuration (HTTP/1.1).
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the certificate (hex, colon-separated, as browsers show it).
    pub fingerprint: String,
    /// Base64 SHA-256 of the key's SubjectPublicKeyInfo, for Chromium's
    /// `--ignore-certificate-errors-spki-list` (a generated certificate only).
    pub spki_sha256: Option<String>,
    /// The certificate file.
    pub cert_path: PathBuf,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TlsError {
    let path = path.to_path_buf();
    move |source| TlsError::Io { what, path, source }
}

/// The loopback names a generated certificate covers, and `extra` (the
/// address the console listens on when it is not loopback).
fn names(extra: Option<std::net::IpAddr>) -> Vec<String> {
    let mut names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    names.extend(extra.map(|ip| ip.to_string()));
    names
}

/// Makes the certificate and key (key owner-only), unless they exist.
fn ensure_generated(state_dir: &Path, extra: Option<std::net::IpAddr>) -> Result<(), TlsError> {
    let (cert, key) = (state_dir.join(CERT_FILE), state_dir.join(KEY_FILE));
    if cert.exists() && key.exists() {
        return Ok(());
    }
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    }
    let made = rcgen::generate_simple_self_signed(names(extra))
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    // A key without its certificate is of no use: make both afresh.
    if key.exists() {
        std::fs::remove_file(&key).map_err(io("removing", &key))?;
    }
    airlock::journal::key::write_private(&key, made.signing_key.serialize_pem().as_bytes())
        .map_err(io("writing", &key))?;
    std::fs::write(&cert, made.cert.pem()).map_err(io("writing", &cert))
}

impl ConsoleTls {
    /// Loads (or first makes) the console's certificate. `listen` is the
    /// console's address: a generated certificate also names it when it is
    /// not loopback.
    pub fn load(source: &CertSource, listen: std::net::IpAddr) -> Result<Self, TlsError> {
        let (cert_path, key_path) = match source {
            CertSource::Generated { state_dir } => {
                let extra = (!listen.is_loopback() && !listen.is_unspecified()).then_some(listen);
                ensure_generated(state_dir, extra)?;
                (state_dir.join(CERT_FILE), state_dir.join(KEY_FILE))
            }
            CertSource::Files { cert, key } => (cert.clone(), key.clone()),
        };
        let pem_error = |what, path: &Path| {
            let path = path.to_path_buf();
            move |e: rustls::pki_types::pem::Error| TlsError::Pem {
                what,
                path,
                message: e.to_string(),
            }
        };
        let chain = CertificateDer::pem_file_iter(&cert_path)
            .map_err(pem_error("certificate", &cert_path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem_error("certificate", &cert_path))?;
        let first = chain.first().ok_or_else(|| TlsError::Pem {
            what: "certificate",
            path: cert_path.clone(),
            message: "the file is empty".into(),
        })?;
        let fingerprint = airlock::attest::sha256_hex(first.as_ref())
            .as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(pem_error("key", &key_path))?;
        let spki_sha256 = match source {
            CertSource::Generated { .. } => {
                let pem = std::fs::read_to_string(&key_path).map_err(io("reading", &key_path))?;
                let pair = rcgen::KeyPair::from_pem(&pem).map_err(|e| TlsError::Pem {
                    what: "key",
                    path: key_path.clone(),
                    message: e.to_string(),
                })?;
                use base64::Engine as _;
                use sha2::Digest as _;
                Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(sha2::Sha256::digest(pair.subject_public_key_info())),
                )
            }
            CertSource::Files { .. } => None,
        };
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Config(e.to_string()))?
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(|e| TlsError::Config(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            fingerprint,
            spki_sha256,
            cert_path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_is_kept_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = CertSource::Generated {
            state_dir: dir.path().to_path_buf(),
        };
        let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
        let first = ConsoleTls::load(&source, loopback).expect("made");
        let again = ConsoleTls::load(&source, loopback).expect("loaded");
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.spki_sha256, again.spki_sha256);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is owner-only: {mode:o}");
        }
    }

    #[test]
    fn the_operators_own_files_are_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = rcgen::generate_simple_self_signed(vec!["console.example".to_string()])
            .expect("certificate");
        let (cert, key) = (dir.path().join("own.pem"), dir.path().join("own.key"));
        std::fs::write(&cert, made.cert.pem()).expect("cert");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("key");
        let source = CertSource::Files {
            cert: cert.clone(),
            key,
        };
        let tls = ConsoleTls::load(&source, std::net::IpAddr::from([0, 0, 0, 0])).expect("loaded");
        assert_eq!(tls.cert_path, cert);
        assert_eq!(
            tls.fingerprint.replace(':', "").to_lowercase(),
            airlock::attest::sha256_hex(made.cert.der())
        );
        assert_eq!(tls.spki_sha256, None, "only a generated key is pinned");
        assert!(!dir.path().join(CERT_FILE).exists(), "nothing generated");
    }

    #[test]
    fn files_without_a_certificate_are_refused_with_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not pem").expect("write");
        let source = CertSource::Files {
            cert: cert.clone(),
            key: dir.path().join("key.pem"),
        };
        let error = ConsoleTls::load(&source, std::net::IpAddr::from([127, 0, 0, 1]))
            .err()
            .expect("refused");
        assert!(error.to_string().contains("cert.pem"), "{error}");
    }
}
