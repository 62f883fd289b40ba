//! Network pieces for egress tests, all on loopback: HTTP servers with
//! hostile behaviours (plain or TLS), a DNS server with changing answers, a
//! test certificate authority, and connectors that record what they are
//! asked and never dial outside 127.0.0.0/8 or ::1.

use airlock::egress::{
    ConnectError, ConnectFuture, Connector, Endpoint, ResolveFuture, Resolver, StaticResolver,
    TcpTlsConnector,
};
use airlock::{Grants, Host, Invocation, NetworkGrant, Outcome};
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::json;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a [`TestServer`] answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with a JSON body describing the request: method, path, headers.
    Echo,
    /// 200 with `size` bytes and a truthful `Content-Length`.
    Sized(usize),
    /// 200 with a chunked body that never ends.
    Endless,
    /// 200 announcing `claimed` bytes in `Content-Length`, sending `sent`.
    Lying {
        /// The announced length.
        claimed: u64,
        /// The bytes actually sent before closing.
        sent: usize,
    },
    /// 200, then one body byte every `every`, `count` times.
    Drip {
        /// The pause between bytes.
        every: Duration,
        /// How many bytes.
        count: usize,
    },
    /// Reads the request and never answers.
    Silent,
    /// 302 to `location`.
    Redirect(String),
    /// Reflects every request header back: as `x-reflected-NAME` response
    /// headers, and in a chunked body (7-byte chunks, so a reflected value
    /// spans chunk boundaries) holding the headers as JSON and that JSON
    /// base64-encoded. A server that leaks what it is sent.
    Reflect,
    /// Reflects the `Authorization` credential (without its scheme) into
    /// every part of a response head it can hold: an informational `103`
    /// response first, then the final response's reason phrase, header
    /// names (raw, upper-cased, percent-encoded and URL-safe base64), a
    /// `Location`, one of several values of a header, and a trailer's name
    /// and value after an empty chunked body.
    ReflectInHead,
    /// Reflects the credential in an obsolete folded header line (a value
    /// continued on the next line), which HTTP/1.1 forbids in responses.
    ReflectFolded,
    /// 200 with `content-encoding: gzip`: a body the host cannot search.
    Gzipped,
    /// 200 with `transfer-encoding: gzip, chunked`, as a server that honours
    /// a `TE: gzip` request sends: after de-chunking, still compressed.
    TransferGzipped,
}

/// A request as a [`TestServer`] saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// The request line's method.
    pub method: String,
    /// The request target (origin-form expected).
    pub target: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Bytes of body read.
    pub body_bytes: usize,
}

impl SeenRequest {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 server on one loopback address.
pub struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Serves plain HTTP on `ip` (a loopback address) at `port` (0: any).
    pub async fn start(ip: Ipv4Addr, port: u16, behaviour: Behaviour) -> std::io::Result<Self> {
        Self::spawn(ip, port, behaviour, None).await
    }

    /// Serves HTTPS with `ca`'s server certificate.
    pub async fn start_tls(
        ip: Ipv4Addr,
        port: u16,
        behaviour: Behaviour,
        ca: &TestCa,
    ) -> std::io::Result<Self> {
        Self::spawn(ip, port, behaviour, Some(ca.acceptor())).await
    }

    async fn spawn(
        ip: Ipv4Addr,
        port: u16,
        behaviour: Behaviour,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<Self> {
        assert!(ip.is_loopback(), "test servers listen on loopback only");
        let listener = TcpListener::bind((ip, port)).await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let behaviour = behaviour.clone();
                let log = Arc::clone(&log);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(stream, &behaviour, &log).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, &behaviour, &log).await;
                            }
                        }
                    }
                });
            }
        });
        Ok(Self { addr, seen, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request it has read.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.seen).clone()
    }
}

async fn read_request(stream: &mut (impl AsyncRead + Unpin)) -> Option<SeenRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    // A chunked body is read to its last chunk (as a server that reads
    // what it is sent would), so that a sender cut off on the way is
    // never answered first.
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length || (chunked && !body.ends_with(b"0\r\n\r\n")) {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let body_bytes = body.len();
    Some(SeenRequest {
        method,
        target,
        headers,
        body_bytes,
    })
}

async fn serve(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    behaviour: &Behaviour,
    log: &Mutex<Vec<SeenRequest>>,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    lock(log).push(request.clone());
    let head = |extra: &str| format!("HTTP/1.1 200 OK\r\nconnection: close\r\n{extra}\r\n");
    let result: std::io::Result<()> = async {
        match behaviour {
            Behaviour::Echo => {
                let body = json!({
                    "method": request.method,
                    "target": request.target,
                    "headers": request.headers,
                    "body_bytes": request.body_bytes,
                })
                .to_string();
                let response = format!(
                    "{}{body}",
                    head(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()))
                );
                stream.write_all(response.as_bytes()).await
            }
            Behaviour::Sized(size) => {
                stream.write_all(head(&format!("content-length: {size}\r\n")).as_bytes()).await?;
                stream.write_all(&vec![b'x'; *size]).await
            }
            Behaviour::Endless => {
                stream.write_all(head("transfer-encoding: chunked\r\n").as_bytes()).await?;
                let chunk = format!("4000\r\n{}\r\n", "y".repeat(0x4000));
                loop {
                    stream.write_all(chunk.as_bytes()).await?;
                }
            }
            Behaviour::Lying { claimed, sent } => {
                stream.write_all(head(&format!("content-length: {claimed}\r\n")).as_bytes()).await?;
                stream.write_all(&vec![b'z'; *sent]).await
            }
            Behaviour::Drip { every, count } => {
                stream.write_all(head(&format!("content-length: {count}\r\n")).as_bytes()).await?;
                for _ in 0..*count {
                    stream.write_all(b".").await?;
                    stream.flush().await?;
                    tokio::time::sleep(*every).await;
                }
                Ok(())
            }
            Behaviour::Silent => {
                std::future::pending::<()>().await;
                Ok(())
            }
            Behaviour::Reflect => {
                use base64::Engine as _;
                let mut extra = String::from("transfer-encoding: chunked\r\n");
                for (name, value) in &request.headers {
                    extra.push_str(&format!("x-reflected-{name}: {value}\r\n"));
                }
                stream.write_all(head(&extra).as_bytes()).await?;
                let seen = json!({ "headers": request.headers }).to_string();
                let encoded = base64::engine::general_purpose::STANDARD.encode(&seen);
                let body = json!({ "raw": seen, "base64": encoded }).to_string();
                for chunk in body.as_bytes().chunks(7) {
                    stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                    stream.write_all(chunk).await?;
                    stream.write_all(b"\r\n").await?;
                    stream.flush().await?;
                }
                stream.write_all(b"0\r\n\r\n").await
            }
            Behaviour::ReflectInHead => {
                use base64::Engine as _;
                let token = credential(&request);
                let upper = token.to_ascii_uppercase();
                let percent: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
                let base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&token);
                let response = format!(
                    "HTTP/1.1 103 Early Hints\r\nx-early-{token}: {token}\r\n\r\n\
                     HTTP/1.1 302 {token}\r\nconnection: close\r\n\
                     x-{token}: raw\r\nx-{upper}: upper\r\nx-{percent}: percent\r\n\
                     x-{base64}: base64url\r\nlocation: /next?token={token}\r\n\
                     x-many: first\r\nx-many: {token}\r\nx-many: last\r\n\
                     trailer: x-trailer-{token}\r\ntransfer-encoding: chunked\r\n\r\n\
                     0\r\nx-trailer-{token}: {token}\r\n\r\n"
                );
                stream.write_all(response.as_bytes()).await
            }
            Behaviour::ReflectFolded => {
                let response = format!(
                    "HTTP/1.1 200 OK\r\nconnection: close\r\nx-folded: Bearer\r\n {}\r\ncontent-length: 0\r\n\r\n",
                    credential(&request)
                );
                stream.write_all(response.as_bytes()).await
            }
            Behaviour::Gzipped => {
                let body = b"\x1f\x8b\x08\x00compressed";
                stream.write_all(head(&format!("content-encoding: gzip\r\ncontent-length: {}\r\n", body.len())).as_bytes()).await?;
                stream.write_all(body).await
            }
            Behaviour::TransferGzipped => {
                let body = b"\x1f\x8b\x08\x00compressed";
                stream.write_all(head("transfer-encoding: gzip, chunked\r\n").as_bytes()).await?;
                stream.write_all(format!("{:x}\r\n", body.len()).as_bytes()).await?;
                stream.write_all(body).await?;
                stream.write_all(b"\r\n0\r\n\r\n").await
            }
            Behaviour::Redirect(location) => {
                let response = format!(
                    "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                stream.write_all(response.as_bytes()).await
            }
        }
    }
    .await;
    drop(result);
    let _ = stream.shutdown().await;
}

/// The credential a request's `Authorization` header carries, without its
/// scheme (`Bearer `), as a reflecting server would echo it.
fn credential(request: &SeenRequest) -> String {
    let value = request.header("authorization").unwrap_or("none");
    value
        .split_once(' ')
        .map_or(value, |(_, token)| token)
        .to_string()
}

/// A certificate authority and one server certificate it signed.
pub struct TestCa {
    certificate: rustls::pki_types::CertificateDer<'static>,
    pem: String,
    roots: rustls::RootCertStore,
    server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A fresh CA whose server certificate is valid for `names`.
    pub fn new(names: &[&str]) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let server_cert = CertificateParams::new(names)
            .expect("server params")
            .signed_by(&server_key, &issuer)
            .expect("server certificate");

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).expect("trust the CA");
        let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der())
            .expect("key DER");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(vec![server_cert.der().clone()], key)
            .expect("server config");
        Self {
            certificate: ca_cert.der().clone(),
            pem: ca_cert.pem(),
            roots,
            server: Arc::new(server),
        }
    }

    /// The CA's own certificate.
    pub fn certificate(&self) -> rustls::pki_types::CertificateDer<'static> {
        self.certificate.clone()
    }

    /// The CA's own certificate, PEM (for a configuration's `roots`).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.server))
    }

    /// A production connector that trusts only this CA.
    pub fn connector(&self) -> TcpTlsConnector {
        TcpTlsConnector::with_roots(self.roots.clone())
    }
}

/// Records every endpoint it is asked for; dials loopback ones through
/// `inner` and refuses all others without opening a socket.
pub struct GuardedConnector {
    inner: Arc<dyn Connector>,
    asked: Mutex<Vec<SocketAddr>>,
}

impl GuardedConnector {
    /// Guards `inner`.
    pub fn new(inner: Arc<dyn Connector>) -> Self {
        Self {
            inner,
            asked: Mutex::new(Vec::new()),
        }
    }

    /// Guards the production connector (Mozilla roots).
    pub fn production() -> Self {
        Self::new(Arc::new(TcpTlsConnector::with_webpki_roots()))
    }

    /// Every endpoint asked for so far, and forgets them.
    pub fn take_asked(&self) -> Vec<SocketAddr> {
        std::mem::take(&mut lock(&self.asked))
    }
}

impl Connector for GuardedConnector {
    fn connect<'a>(&'a self, endpoint: Endpoint<'a>) -> ConnectFuture<'a> {
        let addr = endpoint.addr();
        lock(&self.asked).push(addr);
        if !addr.ip().is_loopback() {
            return Box::pin(async move {
                Err(ConnectError::Tcp {
                    addr,
                    source: std::io::Error::other(
                        "the test connector never dials outside loopback",
                    ),
                })
            });
        }
        self.inner.connect(endpoint)
    }
}

/// A connector whose connections never complete (for connect timeouts).
pub struct HangingConnector;

impl Connector for HangingConnector {
    fn connect<'a>(&'a self, _endpoint: Endpoint<'a>) -> ConnectFuture<'a> {
        Box::pin(std::future::pending())
    }
}

/// A DNS server on 127.0.0.1 (UDP) whose answers change per lookup.
pub struct TestDns {
    addr: SocketAddr,
    zones: Arc<Mutex<HashMap<String, Zone>>>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Zone {
    rounds: Vec<Vec<IpAddr>>,
    a_queries: usize,
    aaaa_queries: usize,
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestDns {
    /// Starts serving; unknown names get NXDOMAIN.
    pub async fn start() -> std::io::Result<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = socket.local_addr()?;
        let zones: Arc<Mutex<HashMap<String, Zone>>> = Arc::default();
        let served = Arc::clone(&zones);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                if let Some(reply) = answer(&buf[..n], &served) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        Ok(Self { addr, zones, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Lookup number k of `name` gets `rounds[k]` (the last round repeats).
    pub fn set(&self, name: &str, rounds: Vec<Vec<IpAddr>>) {
        lock(&self.zones).insert(
            name.to_ascii_lowercase(),
            Zone {
                rounds,
                ..Zone::default()
            },
        );
    }

    /// How many A queries `name` has received.
    pub fn a_queries(&self, name: &str) -> usize {
        lock(&self.zones).get(name).map_or(0, |z| z.a_queries)
    }
}

fn answer(packet: &[u8], zones: &Mutex<HashMap<String, Zone>>) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    let question = query.queries.first()?.clone();
    let name = question
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_query(question.clone());
    let mut zones = lock(zones);
    let Some(zone) = zones.get_mut(&name) else {
        reply.metadata.response_code = ResponseCode::NXDomain;
        return reply.to_vec().ok();
    };
    let round = match question.query_type() {
        RecordType::A => {
            zone.a_queries += 1;
            zone.a_queries - 1
        }
        RecordType::AAAA => {
            zone.aaaa_queries += 1;
            zone.aaaa_queries - 1
        }
        _ => return reply.to_vec().ok(),
    };
    let ips = zone
        .rounds
        .get(round)
        .or(zone.rounds.last())
        .cloned()
        .unwrap_or_default();
    for ip in ips {
        let rdata = match (ip, question.query_type()) {
            (IpAddr::V4(v4), RecordType::A) => RData::A(A(v4)),
            (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(v6)),
            _ => continue,
        };
        reply.add_answer(Record::from_rdata(question.name().clone(), 0, rdata));
    }
    reply.to_vec().ok()
}

/// A resolver whose answers a test can swap between requests.
#[derive(Default)]
pub struct SwitchResolver {
    current: Mutex<Option<Arc<dyn Resolver>>>,
}

impl SwitchResolver {
    /// Answers from now on with `resolver`.
    pub fn set(&self, resolver: impl Resolver + 'static) {
        *lock(&self.current) = Some(Arc::new(resolver));
    }
}

impl Resolver for SwitchResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a> {
        let current = lock(&self.current).clone();
        Box::pin(async move {
            match current {
                Some(resolver) => resolver.resolve(name).await,
                None => StaticResolver::new().resolve(name).await,
            }
        })
    }
}

/// A host wired for egress tests: a [`GuardedConnector`] and a
/// [`SwitchResolver`], never the system's DNS.
pub struct EgressHarness {
    /// The host.
    pub host: Host,
    /// Every endpoint the host asked to connect to.
    pub connector: Arc<GuardedConnector>,
    /// The answers names get.
    pub resolver: Arc<SwitchResolver>,
}

impl EgressHarness {
    /// A harness around the production connector.
    pub fn new() -> Self {
        Self::with_connector(Arc::new(GuardedConnector::production()))
    }

    /// A harness around `connector`.
    pub fn with_connector(connector: Arc<GuardedConnector>) -> Self {
        let resolver = Arc::new(SwitchResolver::default());
        let host = Host::builder()
            .cache_dir(crate::test_cache_dir())
            .policies(crate::permit_all())
            .resolver(Arc::clone(&resolver) as Arc<dyn Resolver>)
            .connector(Arc::clone(&connector) as Arc<dyn Connector>)
            .build()
            .expect("egress test host");
        Self {
            host,
            connector,
            resolver,
        }
    }

    /// Loads `http-get` with the grant in `grant_toml` and runs it on `input`.
    pub async fn fetch(&self, grant_toml: &str, input: serde_json::Value) -> Outcome {
        let grant =
            NetworkGrant::from_toml(grant_toml, "test-grant.toml").expect("test grant is valid");
        let tool =
            crate::load_guest_with(&self.host, "http-get", Grants::none().with_network(grant))
                .await;
        self.host
            .invoke(&tool, Invocation::new(input.to_string()))
            .await
            .expect("http-get runs")
    }
}

impl Default for EgressHarness {
    fn default() -> Self {
        Self::new()
    }
}
