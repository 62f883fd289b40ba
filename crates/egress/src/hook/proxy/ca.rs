//! [`InterceptCa`]: the certificate authority one proxy terminates TLS
//! with, so the host can add a credential inside it. It is made when the
//! proxy starts and lives in this process's memory only: its key is never
//! written anywhere, and only its certificate reaches the sandbox (in the
//! trust bundle, [`InterceptCa::trust_bundle`]).
//!
//! Leaves are minted on demand, one per host, and only for a
//! [`PinnedTarget`], which exists only after the grant, the resolution and
//! Cedar allowed the origin: a name outside the grant has no leaf. The CA
//! itself carries name constraints built from the grant's rules, so even a
//! certificate it signed for another name would not verify.

use crate::decide::PinnedTarget;
use crate::grant::NetworkGrant;
use crate::rules::Matcher;
use crate::url::TargetHost;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How long the CA and its leaves are valid: a proxy lives as long as one
/// native run or one hosted server, and a restart of airlock makes a new
/// CA. A day of slack before now covers clocks that disagree a little.
const VALIDITY: time::Duration = time::Duration::days(30);
const SLACK: time::Duration = time::Duration::days(1);

/// Most leaves one CA keeps minted at once.
const MAX_LEAVES: usize = 256;

/// Why a CA or a leaf could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// rcgen refused the parameters (a name it cannot encode, …).
    #[error("making a certificate failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the leaf.
    #[error("the minted certificate is not usable: {0}")]
    Tls(#[from] rustls::Error),
}

/// One proxy's CA: its key (memory only) and the leaves minted so far.
pub struct InterceptCa {
    issuer: Issuer<'static, KeyPair>,
    certificate: CertificateDer<'static>,
    pem: String,
    /// One key for every leaf of this CA (as short-lived as the CA).
    leaf_key: KeyPair,
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl InterceptCa {
    /// A new CA whose name constraints permit only what `grant` allows.
    pub fn new(grant: &NetworkGrant) -> Result<Self, CaError> {
        let now = time::OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            "airlock egress proxy (this sandbox only)",
        );
        name.push(DnType::OrganizationName, "airlock");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - SLACK;
        params.not_after = now + VALIDITY;
        params.name_constraints = Some(name_constraints(grant));
        let key = KeyPair::generate()?;
        let certificate = params.self_signed(&key)?;
        let pem = certificate.pem();
        Ok(Self {
            certificate: certificate.der().clone(),
            issuer: Issuer::new(params, key),
            pem,
            leaf_key: KeyPair::generate()?,
            leaves: Mutex::default(),
        })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// What the sandbox trusts: this CA first, then, when `with_roots`,
    /// the host's own roots (so the TLS of origins left as blind tunnels
    /// still verifies against the real servers' certificates).
    pub fn trust_bundle(&self, with_roots: bool) -> String {
        let mut bundle = self.pem.clone();
        if with_roots {
            bundle.push_str(host_roots());
        }
        bundle
    }

    /// The TLS configuration presenting a leaf for `pinned`'s host, minted
    /// on first use.
    pub(crate) fn server_config(
        &self,
        pinned: &PinnedTarget,
    ) -> Result<Arc<ServerConfig>, CaError> {
        let host = match &pinned.target().host {
            TargetHost::Name(name) => name.clone(),
            TargetHost::Ip(ip) => ip.to_string(),
        };
        let mut leaves = self.leaves.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = leaves.get(&host) {
            return Ok(Arc::clone(config));
        }
        // Many names under a wildcard or suffix rule: start over rather
        // than grow without bound (a leaf is cheap to mint again).
        if leaves.len() >= MAX_LEAVES {
            leaves.clear();
        }
        let now = time::OffsetDateTime::now_utc();
        let mut params = CertificateParams::new(vec![host.clone()])?;
        params.distinguished_name = DistinguishedName::new();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - SLACK;
        params.not_after = now + VALIDITY;
        let leaf = params.signed_by(&self.leaf_key, &self.issuer)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone(), self.certificate.clone()], key)?;
        // The proxy speaks HTTP/1.1 to the client and upstream.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        leaves.insert(host, Arc::clone(&config));
        Ok(config)
    }

    /// The hosts a leaf was minted for so far.
    #[cfg(test)]
    pub(crate) fn minted(&self) -> Vec<String> {
        let leaves = self.leaves.lock().unwrap_or_else(PoisonError::into_inner);
        let mut hosts: Vec<String> = leaves.keys().cloned().collect();
        hosts.sort();
        hosts
    }
}

/// The host's roots, PEM: read once per process (every bundle of every
/// proxy holds the same), not at each run.
fn host_roots() -> &'static str {
    static ROOTS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!(target: "airlock::egress", %error, "a system root could not be read");
        }
        let pems: Vec<pem::Pem> = found
            .certs
            .iter()
            .map(|der| pem::Pem::new("CERTIFICATE", der.to_vec()))
            .collect();
        pem::encode_many(&pems)
    })
}

/// What a CA for `grant` may vouch for: each rule's host, domain (a
/// wildcard's parent, a suffix; an exact name's subdomains too, which X.509
/// cannot tell apart) or address range. Without a rule for addresses,
/// every address is excluded (a constraint binds only the name types it
/// lists).
fn name_constraints(grant: &NetworkGrant) -> NameConstraints {
    let mut permitted_subtrees = permitted(grant);
    // Without a rule for names, only a reserved name nothing real uses
    // (RFC 2606): no permitted name would leave names unconstrained.
    if !permitted_subtrees
        .iter()
        .any(|subtree| matches!(subtree, GeneralSubtree::DnsName(_)))
    {
        permitted_subtrees.push(GeneralSubtree::DnsName("invalid".into()));
    }
    let excluded_subtrees = if permitted_subtrees
        .iter()
        .any(|subtree| matches!(subtree, GeneralSubtree::IpAddress(_)))
    {
        Vec::new()
    } else {
        vec![
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                std::net::Ipv4Addr::UNSPECIFIED.into(),
                0,
            )),
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                std::net::Ipv6Addr::UNSPECIFIED.into(),
                0,
            )),
        ]
    };
    NameConstraints {
        permitted_subtrees,
        excluded_subtrees,
    }
}

/// The permitted subtrees of [`name_constraints`].
fn permitted(grant: &NetworkGrant) -> Vec<GeneralSubtree> {
    grant
        .rules()
        .rules()
        .iter()
        .map(|rule| match &rule.matcher {
            Matcher::Exact(name) | Matcher::Wildcard(name) | Matcher::Suffix(name) => {
                GeneralSubtree::DnsName(name.clone())
            }
            Matcher::Ip(ip) => GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                *ip,
                if ip.is_ipv4() { 32 } else { 128 },
            )),
            Matcher::Cidr(net) => GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                net.addr(),
                net.prefix_len(),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Decision, decide};
    use crate::resolve::StaticResolver;
    use std::net::{IpAddr, Ipv4Addr};

    #[tokio::test]
    async fn leaves_are_minted_for_allowed_targets_only_and_once() {
        let grant = NetworkGrant::from_toml(
            "[[allow]]\nhost = \"api.test\"\nprivate = true\n[[allow]]\ncidr = \"127.0.0.0/8\"\nprivate = true\n",
            "grant.toml",
        )
        .expect("grant");
        let resolver = StaticResolver::new()
            .with("api.test", [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))])
            .with("evil.test", [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))]);
        let ca = InterceptCa::new(&grant).expect("CA");
        for url in [
            "https://api.test/",
            "https://api.test/other",
            "https://127.0.0.9/",
        ] {
            let Decision::Allow(pinned) = decide(&grant, url, &resolver).await else {
                panic!("{url} is granted");
            };
            ca.server_config(&pinned).expect("a leaf");
        }
        // A name outside the grant never becomes a PinnedTarget, the only
        // thing a leaf is minted for.
        assert!(matches!(
            decide(&grant, "https://evil.test/", &resolver).await,
            Decision::Deny(_)
        ));
        assert_eq!(ca.minted(), ["127.0.0.9", "api.test"]);
        assert!(!ca.pem().contains("PRIVATE KEY"));
        assert_eq!(ca.trust_bundle(false), ca.pem());
    }
}
