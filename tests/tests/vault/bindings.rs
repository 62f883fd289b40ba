//! Bindings are checked when a tool loads: the secret must exist, open,
//! and have a scope that covers the tool; its origins must be granted.

use super::{passphrase, vault_with_secret};
use airlock::policy::Principal;
use airlock::vault::{CredentialBinding, SecretScope, Vault};
use airlock::{Config, Grants, Host, LoadError};
use airlock_tests::{guest_path, permit_all, test_cache_dir};
use rusqlite::Connection;
use std::path::Path;

const CONFIG: &str = r#"
[[tools]]
name = "fetch"
[[tools.network.allow]]
host = "api.test"
[[tools.credentials]]
secret = "api-key"
header = "Authorization"
format = "Bearer {secret}"
hosts = ["api.test"]
"#;

fn grants(text: &str) -> Grants {
    Config::from_toml(text, "airlock.toml", Path::new("."))
        .expect("valid config")
        .tool("fetch")
        .expect("configured")
        .grants()
        .clone()
}

async fn load(host: &Host, grants: Grants) -> Result<airlock::Tool, LoadError> {
    host.load(Path::new(guest_path("http-get")), grants).await
}

fn host_with(vault: Option<Vault>) -> Host {
    let mut builder = Host::builder()
        .cache_dir(test_cache_dir())
        .policies(permit_all());
    if let Some(vault) = vault {
        builder = builder.vault(vault);
    }
    builder.build().expect("host")
}

#[tokio::test]
async fn a_bound_tool_loads_with_the_secrets_capability() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = host_with(Some(vault_with_secret(
        dir.path(),
        SecretScope::Tool("fetch".into()),
    )));
    let tool = load(&host, grants(CONFIG)).await.expect("loads");
    assert!(
        tool.facts()
            .capabilities
            .contains(&airlock::Capability::Secrets)
    );
    assert!(tool.facts().sensitive, "secrets make a tool sensitive");
}

#[tokio::test]
async fn bindings_that_cannot_work_fail_the_load_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other_tool = tempfile::tempdir().expect("tempdir");
    let tampered = tempfile::tempdir().expect("tempdir");
    vault_with_secret(tampered.path(), SecretScope::Global);
    Connection::open(Vault::path_in(tampered.path()))
        .expect("db")
        .execute(
            "UPDATE secrets SET ciphertext = zeroblob(length(ciphertext)) WHERE name = 'api-key'",
            [],
        )
        .expect("tamper");
    let cases: Vec<(Option<Vault>, &str)> = vec![
        (None, "vault_unavailable"),
        (
            Some(vault_with_secret(
                other_tool.path(),
                SecretScope::Tool("other".into()),
            )),
            "secret_scope",
        ),
        (
            Some(Vault::open(tampered.path(), Some(&passphrase())).expect("opens")),
            "envelope_tampered",
        ),
    ];
    for (vault, code) in cases {
        let error = load(&host_with(vault), grants(CONFIG))
            .await
            .expect_err(code);
        assert_eq!(error.code(), code, "{error}");
        assert!(!super::leaks(&error.to_string()), "{error}");
    }
    let empty = vault_with_secret(dir.path(), SecretScope::Global);
    empty.remove("api-key").expect("rm");
    let error = load(&host_with(Some(empty)), grants(CONFIG))
        .await
        .expect_err("no such secret");
    assert_eq!(error.code(), "unknown_secret");
    assert!(error.to_string().contains("airlock vault list"), "{error}");
}

#[tokio::test]
async fn a_binding_outside_the_network_grant_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = host_with(Some(vault_with_secret(dir.path(), SecretScope::Global)));
    let binding = CredentialBinding::new("api-key", "x-api-key", "{secret}", &["elsewhere.test"])
        .expect("binding");
    let grants = grants(CONFIG).with_credential(binding);
    let error = load(&host, grants).await.expect_err("outside the grant");
    assert_eq!(error.code(), "credential_outside_grant");
    assert!(
        error.to_string().contains("https://elsewhere.test"),
        "{error}"
    );
}

#[test]
fn principal_scopes_name_a_principal() {
    let scope: SecretScope = "principal:Agent::\"claude\"".parse().expect("scope");
    assert!(scope.admits_principal(&Principal::agent("claude")));
    assert!(!scope.admits_principal(&Principal::agent("crawler")));
}
