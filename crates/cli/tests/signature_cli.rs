//! Signatures checked on the digest that runs, against a real registry on
//! loopback (Debian's `docker-registry`): cosign key-pair signatures and
//! Sigstore bundles made with `openssl` keys, certificates and RFC 3161
//! timestamps (`tests/python/sign.py`), verified offline by airlock. A good
//! signature runs and names its signer (in `pull`, `inspect`, the lockfile,
//! the attestation and Cedar's `resource.signer`); a wrong key, a wrong
//! identity or issuer, and no signature under `require_signature` are
//! refused before the component is fetched.

mod common;

use airlock_tests::guest_path;
use airlock_tests::registry::{TestRegistry, keygen, root_with_log};
use common::{attestations, code, in_state, json_of, stderr, stdout};
use std::path::Path;

const IDENTITY: &str = "release@acme.example";
const ISSUER: &str = "https://issuer.acme.example";

struct Setup {
    registry: TestRegistry,
    work: tempfile::TempDir,
    reference: String,
    digest: String,
}

impl Setup {
    /// A registry with echo at `tools/echo:1.0`, and the keys `acme` and
    /// `other` in the work directory.
    fn new() -> Self {
        let registry = TestRegistry::start();
        let digest = registry.push("tools/echo:1.0", Path::new(guest_path("echo")));
        let work = tempfile::tempdir().expect("work");
        keygen(&work.path().join("acme"));
        keygen(&work.path().join("other"));
        let reference = registry.reference("tools/echo:1.0");
        Self {
            registry,
            work,
            reference,
            digest,
        }
    }

    fn path(&self, name: &str) -> String {
        self.work.path().join(name).display().to_string()
    }

    fn state(&self) -> std::path::PathBuf {
        self.work.path().join("state")
    }

    /// `airlock.toml` with tool `echo` from the registry, `verify` (a TOML
    /// inline table) required for everything under `ADDR/tools`.
    fn config(&self, verify: &str) -> String {
        let text = format!(
            "[[tools]]\nname = \"echo\"\ncomponent = \"{}\"\n\n[registries.\"{}/tools\"]\nrequire_signature = true\nverify = {verify}\n",
            self.reference,
            self.registry.address()
        );
        let path = self.work.path().join("airlock.toml");
        std::fs::write(&path, text).expect("write the config");
        path.display().to_string()
    }

    fn run(&self, config: &str) -> std::process::Output {
        self.run_with(config, &[])
    }

    /// [`Setup::run`] with `more` arguments after the usual ones.
    fn run_with(&self, config: &str, more: &[&str]) -> std::process::Output {
        let usual = [
            "run", "--config", config, "--tool", "echo", "--json", "--input", "[1]",
        ];
        in_state(&self.state(), &[&usual[..], more].concat())
    }

    /// The test PKI (a CA and a timestamp authority, made on first use by
    /// sign.py) and its trusted_root.json.
    fn pki(&self) -> (String, String) {
        let pki = self.work.path().join("pki");
        std::fs::create_dir_all(&pki).expect("pki");
        let pki = pki.display().to_string();
        let root = format!("{pki}/trusted_root.json");
        (pki, root)
    }

    fn sign(&self, command: &str, args: &[&str]) {
        self.registry
            .sign(command, "tools/echo", &self.digest, args);
    }
}

fn fingerprint_of(public_key: &str) -> String {
    let der = std::process::Command::new("openssl")
        .args(["pkey", "-pubin", "-in", public_key, "-outform", "DER"])
        .output()
        .expect("openssl");
    assert!(der.status.success());
    format!("key:{}", airlock::oci::Digest::of(&der.stdout))
}

fn assert_refused(out: &std::process::Output, reason: &str, fragment: &str) {
    assert_eq!(code(out), 3, "a refusal: {}", stdout(out));
    let refused = json_of(out);
    assert_eq!(refused["code"], reason, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(fragment), "{message}");
}

#[test]
fn a_cosign_key_signature_runs_and_names_its_signer() {
    let setup = Setup::new();
    setup.sign("cosign", &[&setup.path("acme.key")]);
    let config = setup.config(&format!("{{ key = {:?} }}", setup.path("acme.pub")));
    let signer = fingerprint_of(&setup.path("acme.pub"));

    let out = setup.run(&config);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let attested = attestations(&setup.state());
    let last = attested.last().expect("an attestation");
    assert_eq!(last["signer"], signer.as_str());
    assert_eq!(
        last["source"],
        format!("{}@{}", setup.reference, setup.digest)
    );

    let out = in_state(
        &setup.state(),
        &["inspect", "--json", "--config", &config, &setup.reference],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_of(&out)["signer"], signer.as_str());

    let out = in_state(&setup.state(), &["lock", "--config", &config]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lockfile = std::fs::read_to_string(setup.work.path().join("airlock.lock")).expect("lock");
    assert!(
        lockfile.contains(&format!("signer = \"{signer}\"")),
        "{lockfile}"
    );

    // Cedar sees the signer: a policy can hold unsigned tools back.
    let policies = setup.work.path().join("policies");
    std::fs::create_dir(&policies).expect("policies");
    std::fs::copy(
        airlock_tests::permit_all_dir().join("permit-all.cedar"),
        policies.join("permit-all.cedar"),
    )
    .expect("copy");
    std::fs::write(
        policies.join("signed-only.cedar"),
        format!("@id(\"signed-only\")\nforbid (principal, action == Airlock::Action::\"tool.execute\", resource)\nunless {{ resource has signer && resource.signer == \"{signer}\" }};\n"),
    )
    .expect("write the policy");
    let policies = policies.display().to_string();
    let out = in_state(
        &setup.state(),
        &[
            "--policies",
            &policies,
            "run",
            "--config",
            &config,
            "--tool",
            "echo",
            "--input",
            "[2]",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = in_state(
        &setup.state(),
        &[
            "--policies",
            &policies,
            "run",
            guest_path("echo"),
            "--input",
            "[2]",
        ],
    );
    assert_eq!(
        code(&out),
        3,
        "an unsigned file is held back: {}",
        stderr(&out)
    );
}

#[test]
fn a_signature_of_another_digest_does_not_sign_this_one() {
    let setup = Setup::new();
    setup.sign("cosign", &[&setup.path("acme.key")]);
    let other = setup
        .registry
        .push("tools/echo:2.0", Path::new(guest_path("json-transform")));
    // The registry is made to offer echo's signature for the other digest.
    let tag = |digest: &str| format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    setup.registry.sign_raw(
        "copy-tag",
        &["tools/echo", &tag(&setup.digest), &tag(&other)],
    );
    let text = format!(
        "[[tools]]\nname = \"echo\"\ncomponent = \"{}\"\nverify = {{ key = {:?} }}\n",
        setup.registry.reference("tools/echo:2.0"),
        setup.path("acme.pub")
    );
    let config = setup.work.path().join("other.toml");
    std::fs::write(&config, text).expect("write");
    let out = setup.run(&config.display().to_string());
    assert_refused(
        &out,
        "signature_invalid",
        "a cosign signature of another manifest",
    );
}

#[test]
fn a_signature_by_another_key_is_refused_before_anything_runs() {
    let setup = Setup::new();
    let (pki, root) = setup.pki();
    setup.sign("cosign", &[&setup.path("other.key")]);
    setup.sign("bundle-key", &[&setup.path("other.key"), &pki]);
    let config = setup.config(&format!(
        "{{ key = {:?}, trusted_root = {root:?} }}",
        setup.path("acme.pub")
    ));
    let out = setup.run(&config);
    assert_refused(
        &out,
        "signature_invalid",
        "a cosign signature by another key",
    );
    assert_refused(&out, "signature_invalid", "does not verify with the key");
    assert!(attestations(&setup.state()).is_empty(), "nothing may run");
    let layer = airlock::oci::Digest::of(&std::fs::read(guest_path("echo")).expect("echo"));
    assert!(
        !setup
            .state()
            .join("oci/blobs/sha256")
            .join(layer.hex())
            .exists(),
        "the component is not even fetched"
    );
}

#[test]
fn an_unsigned_component_is_refused_where_a_signature_is_required() {
    let setup = Setup::new();
    let config = setup.config(&format!("{{ key = {:?} }}", setup.path("acme.pub")));
    let out = setup.run(&config);
    assert_refused(&out, "signature_missing", "is not signed");
    assert!(attestations(&setup.state()).is_empty(), "nothing may run");
    // Named on the command line, the reference is held to the same table.
    let out = setup.run_with(&config, &[&setup.reference]);
    assert_refused(&out, "signature_missing", "is not signed");
    let out = setup.run_with(&config, &["--locked", &setup.reference]);
    assert_eq!(json_of(&out)["code"], "not_locked", "{}", stdout(&out));
    assert!(attestations(&setup.state()).is_empty(), "nothing may run");
    // Without the requirement the same component runs.
    let plain = setup.work.path().join("plain.toml");
    std::fs::write(
        &plain,
        format!(
            "[[tools]]\nname = \"echo\"\ncomponent = \"{}\"\n",
            setup.reference
        ),
    )
    .expect("write");
    let out = setup.run(&plain.display().to_string());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_sigstore_bundle_verifies_with_its_key() {
    let mut setup = Setup::new();
    let (pki, root) = setup.pki();
    setup.sign("bundle-key", &[&setup.path("acme.key"), &pki]);
    // A bundle's timestamp needs a root to check it by.
    let out = setup.run(&setup.config(&format!("{{ key = {:?} }}", setup.path("acme.pub"))));
    assert_refused(&out, "signature_invalid", "names no trusted_root");
    let config = setup.config(&format!(
        "{{ key = {:?}, trusted_root = {root:?} }}",
        setup.path("acme.pub")
    ));
    let out = setup.run(&config);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let signer = fingerprint_of(&setup.path("acme.pub"));
    assert_eq!(
        attestations(&setup.state()).last().expect("ran")["signer"],
        signer.as_str()
    );

    // Verified again at every load, from the store when the registry is down.
    setup.registry.stop();
    let out = setup.run(&config);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(attestations(&setup.state()).len(), 2);
}

#[test]
fn keyless_bundles_need_the_configured_identity_issuer_and_root() {
    let setup = Setup::new();
    let (pki, root) = setup.pki();
    setup.sign("bundle-keyless", &[&pki, IDENTITY, ISSUER]);
    let keyless = |identity: &str, issuer: &str| {
        setup.config(&format!(
            "{{ identity = {identity:?}, issuer = {issuer:?}, trusted_root = {root:?} }}"
        ))
    };

    let out = setup.run(&keyless(IDENTITY, ISSUER));
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(
        attestations(&setup.state()).last().expect("ran")["signer"],
        format!("{IDENTITY} ({ISSUER})")
    );

    // A root that lists a transparency log requires an entry in it.
    root_with_log(Path::new(&pki));
    let out = setup.run(&setup.config(&format!(
        "{{ identity = {IDENTITY:?}, issuer = {ISSUER:?}, trusted_root = \"{pki}/trusted_root_with_log.json\" }}"
    )));
    assert_refused(&out, "signature_invalid", "must have an inclusion proof");

    let out = setup.run(&keyless("mallory@acme.example", ISSUER));
    assert_refused(&out, "signature_invalid", "identity");
    let out = setup.run(&keyless(IDENTITY, "https://issuer.evil.example"));
    assert_refused(&out, "signature_invalid", "issuer");
    // Another authority's root does not vouch for this certificate.
    let other = setup.work.path().join("other-pki");
    std::fs::create_dir(&other).expect("other pki");
    let other = other.display().to_string();
    setup.sign("bundle-key", &[&setup.path("other.key"), &other]);
    let out = setup.run(&setup.config(&format!(
        "{{ identity = {IDENTITY:?}, issuer = {ISSUER:?}, trusted_root = \"{other}/trusted_root.json\" }}"
    )));
    assert_refused(&out, "signature_invalid", "does not verify");
    // A key does not stand in for the certificate.
    let out = setup.run(&setup.config(&format!(
        "{{ key = {:?}, trusted_root = {root:?} }}",
        setup.path("acme.pub")
    )));
    assert_refused(&out, "signature_invalid", "does not verify with the key");
}

#[test]
fn a_verify_table_that_cannot_work_is_a_configuration_error() {
    let setup = Setup::new();
    for (verify, want) in [
        (
            "{ key = \"missing.pub\" }".to_string(),
            "cannot read the key",
        ),
        (
            format!("{{ key = {:?} }}", setup.path("acme.key")),
            "not a public key",
        ),
        ("{ identity = \"a@b\" }".to_string(), "either"),
        (
            format!(
                "{{ key = {:?}, identity = \"a@b\" }}",
                setup.path("acme.pub")
            ),
            "either",
        ),
    ] {
        let out = setup.run(&setup.config(&verify));
        assert_eq!(code(&out), 2, "{verify}: {}", stdout(&out));
        let message = json_of(&out)["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            message.contains(want) && message.contains("airlock.toml:"),
            "{verify}: {message}"
        );
    }
}
