//! Reflection scrubbing: when a request carried an injected secret, the
//! response's header names and values, its body and its trailers are
//! searched for that secret in the forms a reflecting server produces
//! cheaply, and each occurrence is overwritten with `*` of the same length
//! before the guest reads it. Same length keeps `Content-Length` true. A
//! body is scanned as a stream: the last bytes of each chunk are held back
//! until the next one arrives, so a secret split across chunks is still
//! found. (The status line's reason phrase never reaches a guest:
//! `wasi:http` gives it the status code only.)
//!
//! The forms, all matched with ASCII case ignored (so upper- or lower-cased
//! reflections and either hex case are found): raw; base64 (standard and
//! URL-safe alphabets, at every alignment); percent-encoded, every byte or
//! only the bytes outside RFC 3986's unreserved set; JSON-escaped, the
//! minimal escapes (with and without `\/`) or every character as `\uXXXX`.
//! A form that mixes escaped and literal bytes some other way is not found:
//! the README lists what is not caught.

use aho_corasick::{AhoCorasick, MatchKind};
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use wasmtime_wasi_http::Error as WasiError;
use zeroize::Zeroizing;

/// What replaces each byte of a found secret.
const MASK: u8 = b'*';

/// The encodings of a set of secrets that must not reach the guest.
pub(crate) struct Scrubber {
    patterns: AhoCorasick,
    longest: usize,
}

/// The base64 characters that depend only on `secret`'s bytes when it
/// starts `offset` bytes (0, 1 or 2) into a base64-encoded stream.
fn base64_core(secret: &[u8], offset: usize, engine: &impl base64::Engine) -> Zeroizing<Vec<u8>> {
    let mut shifted = Zeroizing::new(vec![0u8; offset]);
    shifted.extend_from_slice(secret);
    let encoded = Zeroizing::new(engine.encode(shifted.as_slice()).into_bytes());
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + secret.len())) / 6;
    Zeroizing::new(encoded[first..end.min(encoded.len())].to_vec())
}

/// Appends `value`'s lowest `digits` hex digits (upper case; matching
/// ignores case) without a temporary string that would outlive the secret.
fn push_hex(out: &mut Vec<u8>, value: u32, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for shift in (0..digits).rev() {
        out.push(HEX[((value >> (4 * shift)) & 0xF) as usize]);
    }
}

/// `secret` percent-encoded: every byte, or (`all` false) only the bytes
/// outside RFC 3986's unreserved set.
fn percent_encoded(secret: &[u8], all: bool) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() * 3));
    for &byte in secret {
        if !all && (byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)) {
            out.push(byte);
        } else {
            out.push(b'%');
            push_hex(&mut out, u32::from(byte), 2);
        }
    }
    out
}

/// `secret` as the inside of a JSON string: the minimal escapes (`slash`
/// also escapes `/`, as some encoders do), or (`all`) every character as
/// `\uXXXX`. `None` for a secret that is not UTF-8 (no JSON text holds it).
fn json_escaped(secret: &[u8], all: bool, slash: bool) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(secret).ok()?;
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() * 6));
    let mut utf8 = [0u8; 4];
    for c in text.chars() {
        match c {
            _ if all => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.extend_from_slice(b"\\u");
                    push_hex(&mut out, u32::from(*unit), 4);
                }
            }
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '/' if slash => out.extend_from_slice(b"\\/"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(b"\\u");
                push_hex(&mut out, u32::from(c), 4);
            }
            c => out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
        }
    }
    utf8.fill(0);
    Some(out)
}

impl Scrubber {
    /// A scrubber for these secrets (each at least 8 bytes, as the vault
    /// guarantees).
    pub(crate) fn new(secrets: &[&[u8]]) -> Option<Self> {
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for secret in secrets {
            patterns.push(Zeroizing::new(secret.to_vec()));
            for offset in 0..3 {
                patterns.push(base64_core(secret, offset, &STANDARD_NO_PAD));
                patterns.push(base64_core(secret, offset, &URL_SAFE_NO_PAD));
            }
            patterns.push(percent_encoded(secret, true));
            patterns.push(percent_encoded(secret, false));
            for (all, slash) in [(true, false), (false, false), (false, true)] {
                patterns.extend(json_escaped(secret, all, slash));
            }
        }
        patterns.retain(|p| !p.is_empty());
        patterns.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
        patterns.dedup_by(|a, b| a.as_slice() == b.as_slice());
        let longest = patterns.iter().map(|p| p.len()).max()?;
        let patterns = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .build(patterns.iter().map(|p| p.as_slice()))
            .ok()?;
        Some(Self { patterns, longest })
    }

    /// Masks every occurrence in `bytes`; whether anything was found.
    pub(crate) fn scrub(&self, bytes: &mut [u8]) -> bool {
        let found: Vec<_> = self
            .patterns
            .find_iter(&*bytes)
            .map(|m| m.range())
            .collect();
        for range in &found {
            bytes[range.clone()].fill(MASK);
        }
        !found.is_empty()
    }

    /// Masks secrets in every header name and value (of a head or of
    /// trailers). Masking keeps a name a valid token (`*` is a `tchar`, RFC
    /// 9110 section 5.6.2) and a value a valid field value, so nothing needs
    /// dropping; were either ever refused, the header is dropped rather than
    /// passed on unmasked. Names masked alike merge, values kept in order.
    pub(crate) fn scrub_headers(&self, headers: &mut http::HeaderMap) {
        let mut scrubbed = http::HeaderMap::new();
        // `None` names continue the previous name's values.
        let mut name: Option<http::HeaderName> = None;
        for (next, value) in std::mem::take(headers) {
            if let Some(next) = next {
                name = self.scrub_field(next, |b| http::HeaderName::from_bytes(b).ok());
            }
            let Some(name) = &name else { continue };
            if let Some(value) = self.scrub_field(value, |b| http::HeaderValue::from_bytes(b).ok())
            {
                scrubbed.append(name.clone(), value);
            }
        }
        *headers = scrubbed;
    }

    /// `field` itself when it holds no secret; else its masked bytes
    /// rebuilt, `None` if `rebuild` refuses them.
    fn scrub_field<T: AsRef<[u8]>>(&self, field: T, rebuild: fn(&[u8]) -> Option<T>) -> Option<T> {
        let mut bytes = field.as_ref().to_vec();
        if self.scrub(&mut bytes) {
            rebuild(&bytes)
        } else {
            Some(field)
        }
    }
}

/// A response body with secrets masked, chunk boundaries included.
pub(crate) struct ScrubbedBody<B> {
    inner: B,
    scrubber: Arc<Scrubber>,
    held: BytesMut,
    ended: bool,
}

impl<B> ScrubbedBody<B> {
    pub(crate) fn new(inner: B, scrubber: Arc<Scrubber>) -> Self {
        Self {
            inner,
            scrubber,
            held: BytesMut::new(),
            ended: false,
        }
    }

    /// Everything held back, scrubbed, for the end of the stream.
    fn flush(&mut self) -> Option<Frame<Bytes>> {
        if self.held.is_empty() {
            return None;
        }
        let mut rest = std::mem::take(&mut self.held);
        self.scrubber.scrub(&mut rest);
        Some(Frame::data(rest.freeze()))
    }
}

impl<B> Body for ScrubbedBody<B>
where
    B: Body<Data = Bytes, Error = WasiError> + Unpin,
{
    type Data = Bytes;
    type Error = WasiError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WasiError>>> {
        let this = &mut *self;
        loop {
            if this.ended {
                return Poll::Ready(this.flush().map(Ok));
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => this.ended = true,
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.held.extend_from_slice(&data);
                        this.scrubber.scrub(&mut this.held);
                        // Keep back what could be the start of a secret
                        // that the next chunk completes.
                        let keep = this.held.len().min(this.scrubber.longest - 1);
                        let ready = this.held.split_to(this.held.len() - keep);
                        if !ready.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(ready.freeze()))));
                        }
                    }
                    Err(trailers) => {
                        // Trailers end the body: release what is held first.
                        this.ended = true;
                        let mut trailers = trailers.into_trailers().unwrap_or_default();
                        this.scrubber.scrub_headers(&mut trailers);
                        if let Some(rest) = this.flush() {
                            // The trailers are dropped rather than reordered:
                            // guests rarely read them and order matters.
                            return Poll::Ready(Some(Ok(rest)));
                        }
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.held.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use http_body_util::BodyExt;

    /// A body that yields `frames`, one per poll.
    struct Frames(std::vec::IntoIter<Frame<Bytes>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = WasiError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, WasiError>>> {
            Poll::Ready(self.0.next().map(Ok))
        }
    }

    const SECRET: &[u8] = b"sk-live-0123456789abcdef";

    fn scrubber() -> Arc<Scrubber> {
        Arc::new(Scrubber::new(&[SECRET]).expect("patterns"))
    }

    #[test]
    fn raw_and_base64_reflections_are_masked_at_any_alignment() {
        let scrubber = scrubber();
        let mut texts: Vec<Vec<u8>> = vec![[b"token=".as_slice(), SECRET, b"&x=1"].concat()];
        for prefix in ["", "a", "ab", "Bearer "] {
            let framed = [prefix.as_bytes(), SECRET, b"!"].concat();
            texts.push(STANDARD_NO_PAD.encode(&framed).into_bytes());
            texts.push(URL_SAFE_NO_PAD.encode(&framed).into_bytes());
        }
        for mut text in texts {
            let before = text.clone();
            assert!(
                scrubber.scrub(&mut text),
                "{}",
                String::from_utf8_lossy(&before)
            );
            assert_eq!(text.len(), before.len(), "same length");
            assert!(!text.windows(SECRET.len()).any(|w| w == SECRET));
            let decoded = STANDARD_NO_PAD
                .decode(&text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(&text))
                .unwrap_or_default();
            assert!(!decoded.windows(SECRET.len()).any(|w| w == SECRET));
        }
        let mut clean = b"nothing to see here, sk-live-0123".to_vec();
        assert!(!scrubber.scrub(&mut clean));
    }

    #[test]
    fn case_changed_percent_encoded_and_json_escaped_reflections_are_masked() {
        // A secret with bytes that every encoding treats differently.
        const ODD: &[u8] = b"sk/Live+0123\"quote\\end";
        let scrubber = Scrubber::new(&[ODD]).expect("patterns");
        let upper = ODD.to_ascii_uppercase();
        let percent_all: String = ODD.iter().map(|b| format!("%{b:02x}")).collect();
        let percent_some = "sk%2FLive%2B0123%22quote%5Cend".to_string();
        let json_minimal =
            serde_json::to_string(std::str::from_utf8(ODD).expect("utf-8")).expect("json");
        let json_minimal = json_minimal[1..json_minimal.len() - 1].to_string();
        let json_slash = json_minimal.replace('/', "\\/");
        let json_all: String = ODD.iter().map(|b| format!("\\u{b:04x}")).collect();
        let forms: [(&str, Vec<u8>); 6] = [
            ("upper case", upper),
            (
                "every byte percent-encoded, lower hex",
                percent_all.into_bytes(),
            ),
            ("reserved bytes percent-encoded", percent_some.into_bytes()),
            ("JSON minimal escapes", json_minimal.into_bytes()),
            ("JSON with \\/", json_slash.into_bytes()),
            ("JSON \\u escapes", json_all.into_bytes()),
        ];
        for (what, form) in forms {
            let mut text = [b"{\"echo\":\"".as_slice(), &form, b"\"}"].concat();
            let before = text.clone();
            assert!(
                scrubber.scrub(&mut text),
                "{what}: {}",
                String::from_utf8_lossy(&before)
            );
            assert_eq!(text.len(), before.len(), "{what}: same length");
            assert!(
                !text.windows(form.len()).any(|w| w == form.as_slice()),
                "{what}: masked"
            );
        }
    }

    #[test]
    fn header_names_and_values_are_masked_in_every_form_a_name_can_hold() {
        let scrubber = scrubber();
        let core = |offset: usize| {
            let framed = [&b"\0\0"[..offset], SECRET].concat();
            URL_SAFE_NO_PAD.encode(framed)
        };
        let forms = [
            String::from_utf8(SECRET.to_vec()).expect("ASCII"),
            String::from_utf8(SECRET.to_ascii_uppercase()).expect("ASCII"),
            String::from_utf8(percent_encoded(SECRET, true).to_vec()).expect("ASCII"),
            core(0),
            core(1),
            core(2),
        ];
        let mut headers = http::HeaderMap::new();
        for (i, form) in forms.iter().enumerate() {
            let name = http::HeaderName::from_bytes(format!("x-{i}-{form}").as_bytes())
                .unwrap_or_else(|e| panic!("`x-{i}-{form}` is a header name: {e}"));
            headers.append(name, http::HeaderValue::from_static("1"));
        }
        let value = format!("Bearer {}", String::from_utf8_lossy(SECRET));
        for value in ["first", value.as_str(), "last"] {
            let value = http::HeaderValue::from_str(value).expect("value");
            headers.append(http::HeaderName::from_static("x-many"), value);
        }
        scrubber.scrub_headers(&mut headers);

        let shown: Vec<String> = headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let text = shown.join("\n").to_ascii_lowercase();
        for form in &forms {
            assert!(
                !text.contains(&form.to_ascii_lowercase()),
                "{form} in {text}"
            );
        }
        assert_eq!(headers.len(), forms.len() + 3, "nothing dropped: {shown:?}");
        assert!(headers.contains_key(format!("x-0-{}", "*".repeat(SECRET.len())).as_str()));
        let many: Vec<_> = headers.get_all("x-many").iter().collect();
        let masked = format!("Bearer {}", "*".repeat(SECRET.len()));
        assert_eq!(
            many,
            ["first", masked.as_str(), "last"],
            "values stay in order"
        );
    }

    #[tokio::test]
    async fn trailers_are_masked_or_dropped() {
        let secret = String::from_utf8_lossy(SECRET).into_owned();
        let mut trailers = http::HeaderMap::new();
        trailers.insert(
            http::HeaderName::from_bytes(format!("x-{secret}").as_bytes()).expect("name"),
            http::HeaderValue::from_str(&secret).expect("value"),
        );
        // After an empty body, the trailers arrive masked; after data, the
        // held-back tail comes first and the trailers are dropped.
        for body in [&b""[..], b"some data"] {
            let mut frames = Vec::new();
            if !body.is_empty() {
                frames.push(Frame::data(Bytes::copy_from_slice(body)));
            }
            frames.push(Frame::trailers(trailers.clone()));
            let collected = ScrubbedBody::new(Frames(frames.into_iter()), scrubber())
                .collect()
                .await
                .expect("body");
            let seen = collected.trailers().cloned();
            let out = collected.to_bytes();
            assert_eq!(&out[..], body);
            match seen {
                Some(seen) => {
                    assert!(body.is_empty(), "trailers after data are dropped");
                    let masked = "*".repeat(SECRET.len());
                    assert_eq!(
                        seen.get(format!("x-{masked}").as_str()),
                        Some(&http::HeaderValue::from_str(&masked).expect("value"))
                    );
                    assert_eq!(seen.len(), 1);
                }
                None => assert!(!body.is_empty(), "trailers after an empty body arrive"),
            }
        }
    }

    #[tokio::test]
    async fn a_secret_split_across_chunks_is_masked() {
        let body = [b"{\"echo\":\"".as_slice(), SECRET, b"\"}"].concat();
        for split in 1..body.len() {
            let chunks = vec![
                Frame::data(Bytes::copy_from_slice(&body[..split])),
                Frame::data(Bytes::copy_from_slice(&body[split..])),
            ];
            let scrubbed = ScrubbedBody::new(Frames(chunks.into_iter()), scrubber());
            let out = scrubbed.collect().await.expect("body").to_bytes();
            assert_eq!(out.len(), body.len());
            assert!(
                !out.windows(SECRET.len()).any(|w| w == SECRET),
                "split at {split}"
            );
        }
    }
}
