//! The console's HTTP plumbing: strict headers on every response, the
//! device and pairing cookies, form bodies, and CSRF tokens.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use sha2::Sha256;
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Every console response's body.
pub(super) type Body = BoxBody<Bytes, Infallible>;

/// The device cookie (`__Host-`: Secure, path `/`, no domain, so no other
/// site or subdomain can set or read it).
pub(super) const DEVICE_COOKIE: &str = "__Host-airlock-device";
/// The pairing page's own cookie, which its CSRF token is bound to.
pub(super) const PAIR_COOKIE: &str = "__Host-airlock-pair";

/// The longest form body read.
pub(super) const MAX_FORM: usize = 16 * 1024;

/// No inline script or style, nothing from elsewhere, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the headers every console response carries.
pub(super) fn harden(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (
            http::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            http::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            http::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An HTML page.
pub(super) fn html(status: StatusCode, page: String) -> Response<Body> {
    with_type(
        status,
        "text/html; charset=utf-8",
        Full::new(Bytes::from(page)).boxed(),
    )
}

/// An embedded asset.
pub(super) fn asset(content_type: &'static str, bytes: &'static [u8]) -> Response<Body> {
    with_type(
        StatusCode::OK,
        content_type,
        Full::new(Bytes::from_static(bytes)).boxed(),
    )
}

/// Plain text, for what a person will not see in a page.
pub(super) fn text(status: StatusCode, message: &str) -> Response<Body> {
    with_type(
        status,
        "text/plain; charset=utf-8",
        Full::new(Bytes::from(message.to_string())).boxed(),
    )
}

/// A redirect after a form (303: the browser follows with GET).
pub(super) fn see_other(location: &str) -> Response<Body> {
    let mut response = text(StatusCode::SEE_OTHER, "");
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A server-sent event stream fed by `events`.
pub(super) fn event_stream(events: tokio::sync::mpsc::Receiver<Bytes>) -> Response<Body> {
    with_type(
        StatusCode::OK,
        "text/event-stream",
        BodyExt::boxed(Events(events)),
    )
}

struct Events(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(http_body::Frame::data(bytes))))
    }
}

/// `Set-Cookie` for `name`: HttpOnly, Secure, SameSite=Strict, path `/`.
/// `max_age` `None` deletes it.
pub(super) fn set_cookie(
    response: &mut Response<Body>,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) {
    let cookie = match max_age {
        Some(age) => {
            format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={age}")
        }
        None => format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// A form body or query string, decoded (the first value of each name).
pub(super) fn form(encoded: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(encoded) {
        fields.entry(key.into_owned()).or_insert(value.into_owned());
    }
    fields
}

/// Whether a state-changing request comes from the console's own pages,
/// as far as the browser says: its `Sec-Fetch-Site` when it sends one,
/// else its `Origin` (which `no-referrer` pages send as `null`). The CSRF
/// token is checked besides, so a client that sends neither is not
/// trusted on this alone.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site == "same-origin";
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None | Some(Ok("null")) => true,
        Some(Ok(origin)) => host.is_some_and(|host| origin == format!("https://{host}")),
        Some(Err(_)) => false,
    }
}

/// CSRF tokens: an HMAC, under a key made at start, of what the token is
/// bound to (a device, or the pairing page's cookie). A restart voids
/// them; pages carry fresh ones.
pub(super) struct Csrf {
    key: [u8; 32],
}

impl Csrf {
    /// A new key from the system's random source.
    pub(super) fn new() -> Result<Self, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(Self { key })
    }

    fn mac(&self, subject: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(subject.as_bytes());
        mac
    }

    /// The token for `subject`.
    pub(super) fn token(&self, subject: &str) -> String {
        hex::encode(self.mac(subject).finalize().into_bytes())
    }

    /// Whether `given` is `subject`'s token (compared in constant time).
    pub(super) fn check(&self, subject: &str, given: Option<&str>) -> bool {
        given
            .and_then(|g| hex::decode(g).ok())
            .is_some_and(|bytes| self.mac(subject).verify_slice(&bytes).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_hold_only_for_their_subject() {
        let csrf = Csrf::new().expect("random");
        let token = csrf.token("device:a");
        assert!(csrf.check("device:a", Some(&token)));
        assert!(!csrf.check("device:b", Some(&token)));
        assert!(!csrf.check("device:a", None));
        assert!(!csrf.check("device:a", Some("zz")));
        assert!(!Csrf::new().expect("random").check("device:a", Some(&token)));
    }

    #[test]
    fn cross_site_posts_are_told_apart() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7324"));
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://127.0.0.1:7324"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&headers));
    }

    #[test]
    fn cookies_and_forms_parse() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-airlock-device=x y"),
        );
        assert_eq!(cookie(&headers, DEVICE_COOKIE), Some("x y"));
        assert_eq!(cookie(&headers, "b"), None);
        let fields = form(b"code=AB%2DCD&code=again&reason=a+b");
        assert_eq!(fields["code"], "AB-CD");
        assert_eq!(fields["reason"], "a b");
    }
}
