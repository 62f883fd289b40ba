//! Credential bindings as `airlock.toml` writes them (`[[tools.credentials]]`,
//! `[[servers.credentials]]`), checked into [`CredentialBinding`]s with
//! every mistake pointed at its key. One grammar for tools and servers.

use crate::egress::url::Scheme;
use crate::grants::Grants;
use crate::toml_file::{ConfigError, TomlText};
use crate::vault::CredentialBinding;
use serde::Deserialize;
use toml::Spanned;

/// A credential binding as written. The only source of a value is the
/// vault: there is deliberately no key for a command, file or variable.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredential {
    secret: Spanned<String>,
    header: Spanned<String>,
    format: Option<Spanned<String>>,
    hosts: Spanned<Vec<String>>,
    ports: Option<Spanned<Vec<u16>>>,
    schemes: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    replace: bool,
}

/// Builds and checks one binding, pointing errors at the key at fault.
fn binding(raw: RawCredential, source: &TomlText<'_>) -> Result<CredentialBinding, ConfigError> {
    let at = |span: std::ops::Range<usize>| {
        move |e: crate::vault::BindingError| source.error(span, e.to_string())
    };
    let hosts: Vec<&str> = raw.hosts.get_ref().iter().map(String::as_str).collect();
    let format = raw
        .format
        .as_ref()
        .map_or("{secret}", |f| f.get_ref().as_str());
    let span = match (&raw.format, raw.hosts.get_ref().is_empty()) {
        (_, true) => raw.hosts.span(),
        (Some(format), false) if !format.get_ref().contains("{secret}") => format.span(),
        _ => raw.header.span(),
    };
    let mut binding =
        CredentialBinding::new(raw.secret.get_ref(), raw.header.get_ref(), format, &hosts)
            .map_err(|e| match e {
                crate::vault::BindingError::Host { .. } => at(raw.hosts.span())(e),
                crate::vault::BindingError::Format { .. } => {
                    at(raw.format.as_ref().map_or(span.clone(), Spanned::span))(e)
                }
                other => at(span.clone())(other),
            })?;
    if let Some(schemes) = raw.schemes {
        let parsed = schemes
            .get_ref()
            .iter()
            .map(|s| {
                Scheme::parse(s).ok_or_else(|| {
                    source.error(
                        schemes.span(),
                        format!("scheme `{s}` is neither \"https\" nor \"http\""),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        binding = binding.with_schemes(parsed).map_err(at(schemes.span()))?;
    }
    if let Some(ports) = raw.ports {
        binding = binding
            .with_ports(ports.get_ref().clone())
            .map_err(at(ports.span()))?;
    }
    if raw.replace {
        binding = binding.replacing();
    }
    Ok(binding)
}

/// A binding of tool or server `name` (whose table is `table`), checked
/// against its network grant: it may only narrow what the grant reaches.
pub(crate) fn bound(
    raw: Spanned<RawCredential>,
    grants: &Grants,
    table: &str,
    name: &str,
    source: &TomlText<'_>,
) -> Result<CredentialBinding, ConfigError> {
    let hosts_span = raw.get_ref().hosts.span();
    let binding = binding(raw.into_inner(), source)?;
    if let Some(origin) = binding.outside(grants.network()) {
        return Err(source.error(
            hosts_span,
            format!(
                "the binding of secret `{}` reaches {origin}, which {} `{name}`'s network grant does not allow: add it to [[{table}.network.allow]] or remove it from the binding",
                binding.secret(),
                table.trim_end_matches('s')
            ),
        ));
    }
    Ok(binding)
}
