//! What the host adds to one request: the credentials bound to exactly its
//! origin, each checked with Cedar (`credential.use`) and against its
//! secret's scope, and the scrubber for their reflections. The same for a
//! component's `wasi:http` request and for one through a native tool's or
//! hosted server's proxy.

use super::Context;
use crate::credential::SecretRefusal;
use crate::decide::{Denial, PinnedTarget, Reason};
use crate::scrub::Scrubber;
use airlock_policy::SecretFacts;
use std::sync::Arc;

/// A credential ready to go out with one request.
pub(super) struct Injection {
    pub(super) secret: String,
    pub(super) header: http::HeaderName,
    pub(super) value: http::HeaderValue,
}

/// What the host adds to one request: credential headers, and the
/// scrubber for their reflections in the response.
#[derive(Default)]
pub(super) struct Injected {
    pub(super) headers: Vec<Injection>,
    pub(super) scrubber: Option<Arc<Scrubber>>,
}

impl Injected {
    /// The names of the secrets going out, for the record.
    pub(super) fn names(&self) -> Vec<String> {
        self.headers.iter().map(|i| i.secret.clone()).collect()
    }
}

impl Context {
    /// The credentials bound to exactly this origin, each checked with
    /// Cedar (`credential.use`) and against its secret's scope, with a
    /// scrubber for their reflections; or why the request must not go.
    pub(super) fn credentials_for(
        &self,
        headers: &http::HeaderMap,
        pinned: &PinnedTarget,
    ) -> Result<Injected, Box<Denial>> {
        let target = pinned.target();
        let r = &self.requester;
        let refuse = |reason: Reason, message: String| {
            Box::new(Denial {
                reason,
                message,
                target: Some(target.clone()),
                addresses: pinned.addresses().to_vec(),
                rule: Some(pinned.rule().to_string()),
            })
        };
        if let Some(binding) = r
            .credentials
            .bindings
            .iter()
            .find(|b| b.wants_https(target))
        {
            return Err(refuse(
                Reason::CredentialNeedsHttps,
                format!(
                    "secret `{}` is bound to `{}` over https only: use https://{}",
                    binding.secret(),
                    target.host,
                    target.host
                ),
            ));
        }
        let mut injections = Vec::new();
        let mut secrets = Vec::new();
        for binding in r.credentials.bindings.iter().filter(|b| b.matches(target)) {
            let name = binding.secret();
            if headers.contains_key(binding.header()) && !binding.replaces() {
                return Err(refuse(
                    Reason::CredentialHeaderConflict,
                    format!(
                        "the tool set `{}`, which the host fills from secret `{name}` for this origin: leave it out, or give the binding `replace = true` if the program insists on sending a placeholder",
                        binding.header()
                    ),
                ));
            }
            let source = r.credentials.secrets.as_deref().ok_or_else(|| {
                refuse(
                    Reason::CredentialUnavailable,
                    "the host has no vault".into(),
                )
            })?;
            let revealed = source
                .reveal_for(name, &r.principal, &r.tool.name)
                .map_err(|refusal| match refusal {
                    SecretRefusal::Unavailable(code) => refuse(
                        Reason::CredentialUnavailable,
                        format!("secret `{name}`: {code}"),
                    ),
                    SecretRefusal::OutOfScope { scope } => refuse(
                        Reason::CredentialDenied,
                        format!(
                            "secret `{name}` has scope {scope}, which does not cover {} running {}",
                            r.principal, r.tool.name
                        ),
                    ),
                })?;
            let facts = SecretFacts {
                name: name.to_string(),
                scope: revealed.scope,
            };
            let value = revealed.value;
            let verdict = r
                .policies
                .check_credential(&r.principal, &r.tool, &r.context, &facts);
            if !verdict.allowed {
                return Err(refuse(
                    Reason::CredentialDenied,
                    format!(
                        "policy {} refuses secret `{name}`",
                        verdict.policies.join(", ")
                    ),
                ));
            }
            let header_value = binding.header_value(&value).ok_or_else(|| {
                refuse(
                    Reason::CredentialUnavailable,
                    format!("secret `{name}` does not fit in a header"),
                )
            })?;
            injections.push(Injection {
                secret: name.to_string(),
                header: binding.header().clone(),
                value: header_value,
            });
            secrets.push(value);
        }
        let exposed: Vec<&[u8]> = secrets.iter().map(|s| s.as_slice()).collect();
        let scrubber = Scrubber::new(&exposed).map(Arc::new);
        if !exposed.is_empty() && scrubber.is_none() {
            return Err(refuse(
                Reason::CredentialUnavailable,
                "the secrets cannot be searched for in responses".into(),
            ));
        }
        Ok(Injected {
            headers: injections,
            scrubber,
        })
    }
}
