//! Injection through the native tools' egress proxy, spoken to as a
//! sandbox's bridge speaks to it (a client of its own over the proxy's
//! channel): TLS to an origin with a credential binding is terminated with
//! the proxy's CA, the secret is added upstream and masked in what comes
//! back; everything the proxy refuses says why, before any connection.

use super::{SECRET, leaks, vault_with_secret};
use airlock::NetworkGrant;
use airlock::egress::{
    CredentialBinding, Credentials, EgressHook, EgressProxy, EgressRecord, Network, Reason,
    Requester, StaticResolver, Verdict,
};
use airlock::policy::{Principal, RequestContext, ToolFacts, World};
use airlock::vault::SecretScope;
use airlock_tests::net::{Behaviour, GuardedConnector, TestCa, TestServer};
use airlock_tests::permit_all;
use http_body_util::{BodyExt, Empty};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const API: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);
const BAD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 6);

/// A proxy for a native tool granted `api.test` (secret `api-key` bound to
/// it) and `bad.test` (bound too, but serving a certificate no root
/// airlock trusts vouches for), both reflecting what they are sent.
struct Proxied {
    proxy: Arc<EgressProxy>,
    api: TestServer,
    bad: TestServer,
    connector: Arc<GuardedConnector>,
    _vault_dir: tempfile::TempDir,
}

async fn world(intercept_all: bool, replace: bool) -> Proxied {
    world_with(intercept_all, replace, Behaviour::Reflect, "").await
}

/// As [`world`], `api.test` answering with `behaviour`, `more` grant keys.
async fn world_with(
    intercept_all: bool,
    replace: bool,
    behaviour: Behaviour,
    more: &str,
) -> Proxied {
    let upstream = TestCa::new(&["api.test"]);
    let stranger = TestCa::new(&["bad.test"]);
    let api = TestServer::start_tls(API, 0, behaviour, &upstream)
        .await
        .expect("api server");
    let bad = TestServer::start_tls(BAD, 0, Behaviour::Reflect, &stranger)
        .await
        .expect("bad server");
    let (api_port, bad_port) = (api.addr().port(), bad.addr().port());
    let grant = NetworkGrant::from_toml(
        &format!(
            "{more}{}[[allow]]\nhost = \"api.test\"\nprivate = true\nports = [{api_port}]\n[[allow]]\nhost = \"bad.test\"\nprivate = true\nports = [{bad_port}]\n",
            if intercept_all { "intercept = \"all\"\n" } else { "" }
        ),
        "grant.toml",
    )
    .expect("grant");
    let bindings: Vec<CredentialBinding> = [("api.test", api_port), ("bad.test", bad_port)]
        .into_iter()
        .filter(|_| !intercept_all)
        .map(|(host, port)| {
            CredentialBinding::new("api-key", "Authorization", "Bearer {secret}", &[host])
                .and_then(|b| b.with_ports(vec![port]))
                .map(|b| if replace { b.replacing() } else { b })
                .expect("binding")
        })
        .collect();
    let vault_dir = tempfile::tempdir().expect("tempdir");
    let vault = vault_with_secret(vault_dir.path(), SecretScope::Global);
    let connector = Arc::new(GuardedConnector::new(Arc::new(upstream.connector())));
    let hook = EgressHook::new(
        "01PROXIED",
        Arc::new(grant),
        Network {
            resolver: Arc::new(
                StaticResolver::new()
                    .with("api.test", [IpAddr::V4(API)])
                    .with("bad.test", [IpAddr::V4(BAD)]),
            ),
            connector: Arc::clone(&connector) as Arc<dyn airlock::egress::Connector>,
        },
        Requester {
            policies: Arc::new(permit_all()),
            principal: Principal::user("operator"),
            tool: ToolFacts::derive("curlish", World::Native, vec![], "sha", false),
            context: RequestContext::default(),
            credentials: Credentials {
                bindings: bindings.into(),
                secrets: Some(Arc::new(vault)),
            },
        },
    );
    Proxied {
        proxy: Arc::new(EgressProxy::start(hook).expect("proxy")),
        api,
        bad,
        connector,
        _vault_dir: vault_dir,
    }
}

/// A connection to the proxy, as the sandbox's bridge opens one.
async fn dial(proxy: &Arc<EgressProxy>) -> tokio::net::UnixStream {
    let proxy = Arc::clone(proxy);
    let stream = tokio::task::spawn_blocking(move || proxy.connect())
        .await
        .expect("task")
        .expect("connected");
    stream.set_nonblocking(true).expect("nonblocking");
    tokio::net::UnixStream::from_std(stream).expect("tokio stream")
}

/// The response head to `CONNECT authority`, and the stream after it.
async fn connect(proxy: &Arc<EgressProxy>, authority: &str) -> (String, tokio::net::UnixStream) {
    let mut stream = dial(proxy).await;
    stream
        .write_all(format!("CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n\r\n").as_bytes())
        .await
        .expect("CONNECT");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await.expect("head") == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (String::from_utf8_lossy(&head).into_owned(), stream)
}

/// TLS over `stream` naming `sni`, trusting `roots` only.
async fn tls(
    stream: tokio::net::UnixStream,
    roots: rustls::RootCertStore,
    sni: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::UnixStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(sni.to_string()).expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
}

/// The proxy's CA alone, from the bundle it gives its sandbox.
fn proxy_ca(proxy: &EgressProxy) -> rustls::RootCertStore {
    let bundle = proxy.trust_bundle().expect("the proxy intercepts");
    let first = CertificateDer::pem_slice_iter(bundle.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(first).expect("the CA");
    roots
}

/// `GET path` over `io`: status, headers as text, body.
async fn get<IO>(io: IO, authority: &str, path: &str) -> (u16, String, String)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    get_with(io, authority, path, None).await
}

/// As [`get`], with an `Authorization` header of the client's own.
async fn get_with<IO>(
    io: IO,
    authority: &str,
    path: &str,
    authorization: Option<&str>,
) -> (u16, String, String)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let mut request = hyper::Request::get(path).header("host", authority);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let request = request.body(Empty::<bytes::Bytes>::new()).expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let headers = format!("{:?}", response.headers());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// The proxy's records once `failures` of them carry a reason: some are
/// finished on the proxy's own tasks, after the client saw the outcome.
async fn settled(proxy: &EgressProxy, failures: usize) -> Vec<EgressRecord> {
    let wait = async {
        loop {
            let records = proxy.records();
            if records.iter().filter(|r| r.reason.is_some()).count() >= failures {
                return records;
            }
            tokio::task::yield_now().await;
        }
    };
    match tokio::time::timeout(std::time::Duration::from_secs(30), wait).await {
        Ok(records) => records,
        Err(_) => panic!("records never settled: {:#?}", proxy.records()),
    }
}

fn only(records: &[EgressRecord], reason: Reason) -> &EgressRecord {
    let found: Vec<_> = records
        .iter()
        .filter(|r| r.reason == Some(reason))
        .collect();
    assert_eq!(found.len(), 1, "{records:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_origin_gets_the_secret_inside_tls_and_never_sees_it_come_back() {
    let world = world(false, false).await;
    let authority = format!("api.test:{}", world.api.addr().port());
    let (head, stream) = connect(&world.proxy, &authority).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The client trusts the proxy's CA and nothing else: the leaf verifies
    // for the granted name (the CA's name constraints included).
    let tls = tls(stream, proxy_ca(&world.proxy), "api.test")
        .await
        .expect("the minted leaf verifies");
    let (status, headers, body) = get(tls, &authority, "/reflect?q=1").await;
    assert_eq!(status, 200, "{body}");

    let seen = world.api.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str()),
        "the upstream got the injected credential"
    );
    assert_eq!(seen[0].target, "/reflect?q=1");
    assert!(
        !leaks(&headers) && !leaks(&body),
        "masked: {headers} {body}"
    );
    assert!(
        body.contains("authorization"),
        "the reflection arrived: {body}"
    );

    let records = world.proxy.records();
    assert_eq!(records.len(), 2, "the tunnel and the request: {records:#?}");
    assert_eq!(records[0].method, "CONNECT");
    assert!(records[0].credentials.is_empty());
    let record = &records[1];
    assert_eq!(record.verdict, Verdict::Allow);
    assert_eq!(record.method, "GET");
    assert_eq!(record.credentials, ["api-key"]);
    assert_eq!(record.status, Some(200));
    assert!(record.bytes_down > 0);
    assert_eq!(
        record.path_sha256.as_deref().map(str::len),
        Some(64),
        "{record:?}"
    );
    assert!(!leaks(&format!("{records:?}")));

    // What the sandbox is given holds certificates only, never a key.
    let bundle = world.proxy.trust_bundle().expect("bundle");
    assert!(bundle.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!bundle.contains("PRIVATE KEY"), "no key in the bundle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_say_why_and_come_before_any_connection() {
    let world = world(false, false).await;
    let api_port = world.api.addr().port();

    // A name the grant does not allow: refused at the CONNECT.
    let (head, _) = connect(&world.proxy, "evil.test:443").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(head.contains("host_not_allowed"), "{head}");

    // Plain http to a host bound over https only: refused, not sent bare.
    let mut plain = dial(&world.proxy).await;
    let request = format!(
        "GET http://api.test:{api_port}/ HTTP/1.1\r\nhost: api.test:{api_port}\r\nconnection: close\r\n\r\n"
    );
    plain.write_all(request.as_bytes()).await.expect("request");
    let mut answer = String::new();
    plain.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("credential_needs_https"), "{answer}");

    // A ClientHello naming another server in the granted tunnel: no leaf
    // is minted for it, the handshake fails.
    let (head, stream) = connect(&world.proxy, &format!("api.test:{api_port}")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        tls(stream, proxy_ca(&world.proxy), "evil.test")
            .await
            .is_err()
    );

    assert!(
        world.connector.take_asked().is_empty(),
        "nothing was dialled"
    );
    let records = settled(&world.proxy, 3).await;
    only(&records, Reason::HostNotAllowed);
    only(&records, Reason::CredentialNeedsHttps);
    only(&records, Reason::SniMismatch);
    assert!(world.api.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_refuses_the_ca_and_an_upstream_that_fails_its_checks_are_named() {
    let world = world(false, false).await;

    // A client that pins its own roots refuses the proxy's leaf: recorded
    // as such, with the way out.
    let (_, stream) = connect(
        &world.proxy,
        &format!("api.test:{}", world.api.addr().port()),
    )
    .await;
    let theirs = TestCa::new(&["api.test"]);
    let mut pinned = rustls::RootCertStore::empty();
    pinned.add(theirs.certificate()).expect("their CA");
    assert!(tls(stream, pinned, "api.test").await.is_err());

    // An upstream whose certificate no trusted root vouches for: the
    // client's TLS (with the proxy) works, the request is a 502 that says.
    let authority = format!("bad.test:{}", world.bad.addr().port());
    let (_, stream) = connect(&world.proxy, &authority).await;
    let tls = tls(stream, proxy_ca(&world.proxy), "bad.test")
        .await
        .expect("the proxy's own leaf");
    let (status, headers, body) = get(tls, &authority, "/").await;
    assert_eq!(status, 502, "{headers} {body}");
    assert!(
        body.contains("tls_failed") && body.contains("certificate"),
        "{body}"
    );
    assert!(world.bad.requests().is_empty(), "no request reached it");

    let records = settled(&world.proxy, 2).await;
    let refused = only(&records, Reason::ClientRefusedCa);
    assert_eq!(refused.method, "CONNECT");
    let failed = only(&records, Reason::TlsFailed);
    assert_eq!(failed.credentials, ["api-key"], "{failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placeholder_the_program_sends_is_refused_unless_the_binding_replaces_it() {
    for replace in [false, true] {
        let world = world(false, replace).await;
        let authority = format!("api.test:{}", world.api.addr().port());
        let (_, stream) = connect(&world.proxy, &authority).await;
        let tls = tls(stream, proxy_ca(&world.proxy), "api.test")
            .await
            .expect("intercepted");
        let (status, _, body) =
            get_with(tls, &authority, "/", Some("Bearer placeholder-from-env")).await;
        let seen = world.api.requests();
        if replace {
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                seen[0].header("authorization"),
                Some(format!("Bearer {SECRET}").as_str()),
                "the placeholder was replaced"
            );
        } else {
            assert_eq!(status, 403, "{body}");
            assert!(
                body.contains("credential_header_conflict") && body.contains("replace = true"),
                "{body}"
            );
            assert!(seen.is_empty(), "{seen:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reflected_anywhere_in_the_head_reaches_the_program_masked() {
    // The status line's reason phrase, a 1xx response, header names,
    // Location, trailers: the raw bytes the program reads hold none of it.
    let world = world_with(false, false, Behaviour::ReflectInHead, "").await;
    let authority = format!("api.test:{}", world.api.addr().port());
    let (_, stream) = connect(&world.proxy, &authority).await;
    let mut tls = tls(stream, proxy_ca(&world.proxy), "api.test")
        .await
        .expect("intercepted");
    // `TE: trailers`, so the proxy writes the trailers it relays.
    let request =
        format!("GET / HTTP/1.1\r\nhost: {authority}\r\nte: trailers\r\nconnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("request");
    let mut raw = Vec::new();
    // The client's own TLS may end without close_notify: what arrived counts.
    let _ = tls.read_to_end(&mut raw).await;
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 302 Found"), "{raw}");
    for reflected in ["x-many: ", "location: /next?token=", "x-trailer-"] {
        assert!(
            raw.contains(reflected),
            "{reflected} arrived, masked: {raw}"
        );
    }
    assert!(!leaks(&raw), "{raw}");
    assert_eq!(
        world.api.requests()[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_kept_alive_in_one_tunnel_each_count_and_are_recorded() {
    // Three requests allowed: the CONNECT is the first (the first request
    // inside is that one), the fourth inside is refused.
    let world = world_with(false, false, Behaviour::Reflect, "max_requests = 3\n").await;
    let authority = format!("api.test:{}", world.api.addr().port());
    let (_, stream) = connect(&world.proxy, &authority).await;
    let tls = tls(stream, proxy_ca(&world.proxy), "api.test")
        .await
        .expect("intercepted");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let mut statuses = Vec::new();
    for n in 0..4 {
        let request = hyper::Request::get(format!("/{n}"))
            .header("host", &authority)
            .body(Empty::<bytes::Bytes>::new())
            .expect("request");
        sender.ready().await.expect("the tunnel stays open");
        let response = sender.send_request(request).await.expect("one connection");
        statuses.push(response.status().as_u16());
        response.into_body().collect().await.expect("body");
    }
    assert_eq!(statuses, [200, 200, 200, 403]);
    // Another CONNECT inside the tunnel is no request for its origin.
    sender.ready().await.expect("the tunnel stays open");
    let nested = hyper::Request::connect("evil.test:443")
        .body(Empty::<bytes::Bytes>::new())
        .expect("request");
    let nested = sender.send_request(nested).await.expect("answered");
    assert_eq!(nested.status(), 405);
    assert_eq!(world.api.requests().len(), 3, "nothing more went upstream");
    assert_eq!(world.api.requests().len(), 3);
    let records = world.proxy.records();
    let inside: Vec<_> = records.iter().filter(|r| r.method == "GET").collect();
    assert_eq!(inside.len(), 4, "{records:#?}");
    assert_eq!(inside[3].reason, Some(Reason::TooManyRequests));
    assert!(inside[..3].iter().all(|r| r.credentials == ["api-key"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intercepting_everything_records_each_request_and_leaves_nothing_to_inject() {
    let world = world(true, false).await;
    let authority = format!("api.test:{}", world.api.addr().port());
    let (_, stream) = connect(&world.proxy, &authority).await;
    let tls = tls(stream, proxy_ca(&world.proxy), "api.test")
        .await
        .expect("intercepted");
    let (status, _, _) = get(tls, &authority, "/one").await;
    assert_eq!(status, 200);
    let seen = world.api.requests();
    assert_eq!(seen[0].header("authorization"), None, "nothing bound");
    let records = world.proxy.records();
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[1].method, "GET");
    assert!(records[1].credentials.is_empty());
    // Nothing stays a blind tunnel: the bundle is the CA alone.
    let bundle = world.proxy.trust_bundle().expect("bundle");
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1);
    // With blind tunnels, the host's roots follow the CA.
    let tunnels = world_with(false, false, Behaviour::Reflect, "").await;
    let bundle = tunnels.proxy.trust_bundle().expect("bundle");
    let roots = rustls_native_certs::load_native_certs().certs.len();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1 + roots);
}

/// What the `curl` tool below prints about one run.
#[cfg(target_os = "linux")]
const CURL_SCRIPT: &str = r#"read -r input
needle=$(printf '%s' "$input" | sed 's/.*"needle":"\([^"]*\)".*/\1/')
# A control: a file that does hold the needle must be found.
printf '%s' "$needle" > /tmp/control
body=$(curl -s -m 10 https://api.test:API_PORT/reflect | base64 -w0)
refused=$(curl -s -m 5 -o /dev/null -w '%{http_connect}' https://evil.test/ || true)
found=$(printf '%s\n' "$needle" | grep -rlsF -f - / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=usr | tr '\n' ' ')
environ=$(printf '%s\n' "$needle" | grep -lsF -f - /proc/[0-9]*/environ /proc/[0-9]*/cmdline | tr '\n' ' ')
keys=$(grep -c 'PRIVATE KEY' "$SSL_CERT_FILE")
certs=$(grep -c 'BEGIN CERTIFICATE' "$SSL_CERT_FILE")
if (printf x >> "$SSL_CERT_FILE") 2>/dev/null; then writable=yes; else writable=no; fi
printf '{"body":"%s","refused":"%s","found":"%s","environ":"%s","keys":"%s","certs":"%s","bundle":"%s","writable":"%s"}' \
  "$body" "$refused" "$found" "$environ" "$keys" "$certs" "$SSL_CERT_FILE" "$writable""#;

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_under_bubblewrap_gets_the_secret_added_and_holds_no_trace_of_it() {
    use base64::Engine as _;
    let upstream = TestCa::new(&["api.test"]);
    let api = TestServer::start_tls(API, 0, Behaviour::Reflect, &upstream)
        .await
        .expect("api server");
    let port = api.addr().port();
    let script = CURL_SCRIPT.replace("API_PORT", &port.to_string());
    let text = format!(
        r#"
[[tools]]
name = "curler"
native = {{ program = "/bin/sh", args = ["-c", {script:?}], network = "strict" }}
[[tools.network.allow]]
host = "api.test"
private = true
ports = [{port}]
[[tools.credentials]]
secret = "api-key"
header = "Authorization"
format = "Bearer {{secret}}"
hosts = ["api.test"]
ports = [{port}]
"#
    );
    let config = airlock::Config::from_toml(&text, "airlock.toml", std::path::Path::new("/"))
        .expect("a native tool may have credentials");
    let state = tempfile::tempdir().expect("tempdir");
    let connector = Arc::new(GuardedConnector::new(Arc::new(upstream.connector())));
    let host = airlock::Host::builder()
        .cache_dir(airlock_tests::test_cache_dir())
        .state_dir(state.path())
        .policies(permit_all())
        .vault(vault_with_secret(state.path(), SecretScope::Global))
        .resolver(Arc::new(
            StaticResolver::new().with("api.test", [IpAddr::V4(API)]),
        ))
        .connector(Arc::clone(&connector) as Arc<dyn airlock::egress::Connector>)
        .native_bridge(env!("CARGO_BIN_EXE_bridge"))
        .build()
        .expect("host");
    let tool = host
        .load_configured(config.tool("curler").expect("configured"))
        .await
        .expect("loads");
    assert!(
        tool.facts()
            .capabilities
            .contains(&airlock::Capability::Secrets)
    );
    let input = serde_json::json!({ "needle": SECRET }).to_string();
    let outcome = tool
        .invoke(&host, airlock::Invocation::new(&input))
        .await
        .expect("runs");
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
    let output: serde_json::Value =
        serde_json::from_str(outcome.output().expect("output")).expect("JSON");

    // The upstream got the credential; curl saw its reflection masked.
    let seen = api.requests();
    assert_eq!(
        seen.len(),
        1,
        "{seen:?} {output} {:#?}",
        outcome.report().egress
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    let body = base64::engine::general_purpose::STANDARD
        .decode(output["body"].as_str().expect("body"))
        .expect("base64");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("authorization"), "reflected: {body}");
    assert!(!leaks(&body), "masked: {body}");

    // Refused before any connection: only the granted upstream was dialled.
    assert_eq!(output["refused"], "403", "{output}");
    assert_eq!(connector.take_asked(), [api.addr()]);

    // No trace inside: the search finds its own control file and nothing
    // else, in any file or any process's environment or command line.
    assert_eq!(output["found"], "/tmp/control ", "{output}");
    assert_eq!(output["environ"], "", "{output}");
    // The bundle: certificates only (the CA and the host's roots), read-only.
    assert_eq!(output["keys"], "0", "{output}");
    assert!(output["certs"].as_str().and_then(|n| n.parse::<u32>().ok()) >= Some(1));
    assert_eq!(output["bundle"], airlock_sandbox::TRUST_IN_SANDBOX);
    assert_eq!(output["writable"], "no");

    // The journal names the credential, never its value.
    let store = airlock::store::Store::in_state_dir(state.path()).expect("store");
    let entries = airlock::journal::JournalStore::all(&store).expect("entries");
    let egress: Vec<_> = entries.iter().filter(|e| e.kind == "egress").collect();
    assert!(
        egress
            .iter()
            .any(|e| e.payload.contains("\"credentials\":[\"api-key\"]")),
        "{egress:#?}"
    );
    assert!(entries.iter().all(|e| !leaks(&e.payload)));
}
