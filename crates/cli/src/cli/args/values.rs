//! The flags' values: text to durations, sizes, principals, decisions,
//! `--resolve` answers and directory grants, each refusal saying what to
//! write instead (clap shows the `String`).

use airlock::approvals::OperatorDecision;
use airlock::policy::Principal;
use airlock::{DirAccess, DirGrant};
use std::net::IpAddr;
use std::time::Duration;

pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}: write a duration such as `500ms`, `10s` or `2m`"))
}

pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| format!("{e}: write a size such as `65536`, `64KiB` or `128MiB`"))
}

pub(super) fn parse_principal(text: &str) -> Result<Principal, String> {
    text.parse()
        .map_err(|e: airlock::policy::PrincipalParseError| e.to_string())
}

pub(super) fn parse_allow(text: &str) -> Result<OperatorDecision, String> {
    match text {
        "once" => Ok(OperatorDecision::AllowOnce),
        "session" => Ok(OperatorDecision::AllowSession),
        other => other
            .strip_prefix("until=")
            .and_then(|d| humantime::parse_duration(d).ok())
            .map(OperatorDecision::AllowFor)
            .ok_or_else(|| {
                format!("`{other}`: write `once`, `session` or `until=DURATION` (e.g. `until=2h`)")
            }),
    }
}

pub(super) fn parse_resolve(text: &str) -> Result<(String, Vec<IpAddr>), String> {
    let hint = "write HOST=IP[,IP...], e.g. `api.example.com=127.0.0.1`";
    let (host, ips) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` has no `=`: {hint}"))?;
    let ips = ips
        .split(',')
        .map(|ip| {
            ip.trim()
                .parse::<IpAddr>()
                .map_err(|e| format!("`{ip}`: {e}: {hint}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if host.trim().is_empty() {
        return Err(format!("`{text}` names no host: {hint}"));
    }
    Ok((host.trim().to_string(), ips))
}

fn parse_dir(text: &str, access: DirAccess) -> Result<DirGrant, String> {
    match text.split_once("::") {
        Some((host, guest)) if !host.is_empty() && !guest.is_empty() => {
            Ok(DirGrant::new(host, guest, access))
        }
        _ => Err(format!(
            "`{text}` is not HOST::GUEST: write e.g. `./data::/data` (host directory, \
             then the name the tool sees)"
        )),
    }
}

pub(super) fn parse_dir_ro(text: &str) -> Result<DirGrant, String> {
    parse_dir(text, DirAccess::ReadOnly)
}

pub(super) fn parse_dir_rw(text: &str) -> Result<DirGrant, String> {
    parse_dir(text, DirAccess::ReadWrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_or_explain() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(
            parse_duration("soon")
                .expect_err("not a duration")
                .contains("500ms")
        );
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(
            parse_size("lots")
                .expect_err("not a size")
                .contains("128MiB")
        );
        let dir = parse_dir_ro("./data::/data").expect("valid");
        assert_eq!((dir.guest(), dir.access()), ("/data", DirAccess::ReadOnly));
        assert!(
            parse_dir_rw("./data")
                .expect_err("no delimiter")
                .contains("HOST::GUEST")
        );
        assert!(parse_dir_rw("::/data").is_err());
        let (host, ips) = parse_resolve("api.test=127.0.0.1,::1").expect("valid");
        assert_eq!((host.as_str(), ips.len()), ("api.test", 2));
        assert!(
            parse_resolve("api.test")
                .expect_err("no =")
                .contains("HOST=IP")
        );
        assert!(parse_resolve("api.test=nope").is_err());
    }
}
