//! `airlock run`: load a component or a configured native tool, run it once
//! on JSON input, print the result.

use super::approvals;
use super::args::{Cli, RunArgs};
use super::render;
use airlock::config::ComponentSource;
use airlock::policy::{Principal, RequestContext};
use airlock::{Grants, Invocation, LimitExceeded, Outcome, ToolSource, exit_code};
use std::io::{IsTerminal, Read};

/// Prints an error (as JSON on stdout too, with `--json`) and returns `exit`.
fn report_error(json: bool, code: &str, message: &str, exit: u8) -> u8 {
    if json {
        outln!("{}", render::error_json(code, message, exit));
    }
    super::fail(code, message, exit)
}

pub async fn run(cli: &Cli, args: &RunArgs) -> u8 {
    let json = args.json;
    let configured = match args.source.tool() {
        Ok(configured) => configured,
        Err(e) => return report_error(json, e.code(), &e.to_string(), exit_code::USAGE),
    };
    // The tool's configured limits, then the flags over them.
    let base = configured
        .as_ref()
        .and_then(|t| t.limits().cloned())
        .unwrap_or_default();
    let limits = match args.limits.to_limits(base) {
        Ok(limits) => limits,
        Err(message) => return report_error(json, "usage", &message, exit_code::USAGE),
    };
    let input = match read_input(args, limits.max_input_bytes, cli.quiet) {
        Ok(input) => json_trimmed(input),
        Err((code, message, exit)) => return report_error(json, code, &message, exit),
    };

    let parsed = args
        .source
        .config
        .as_deref()
        .and_then(|config| airlock::Config::from_file(config).ok());
    let registries = parsed
        .as_ref()
        .map(|p| p.registries().to_vec())
        .unwrap_or_default();
    let native = configured.as_ref().and_then(|t| t.native().cloned());
    let target = match (
        native,
        &args.component,
        configured.as_ref().and_then(|t| t.component_to_load()),
    ) {
        (Some(_), Some(_), _) => {
            let message = "this tool is configured as a native program: drop the component path";
            return report_error(json, "usage", message, exit_code::USAGE);
        }
        (Some(spec), None, _) => ToolSource::Native(Box::new(spec)),
        (None, Some(path), _) => match path.to_str() {
            Some(text) if text.starts_with(airlock::oci::reference::SCHEME) => {
                // Held to the configuration's registries like a configured
                // tool: their signature, and under --locked a digest.
                let source = super::pull::oci_reference(text).and_then(|reference| {
                    if args.locked && reference.digest().is_none() {
                        return Err(super::Failure::usage(
                            "not_locked",
                            format!("--locked, but {reference} names a tag: give its digest (oci://…@sha256:…)"),
                        ));
                    }
                    let signature = super::pull::required_trust(&registries, &reference)?;
                    Ok(ToolSource::Oci {
                        reference,
                        signature,
                    })
                });
                match source {
                    Ok(source) => source,
                    Err(f) => return report_error(json, f.code, &f.message, f.exit),
                }
            }
            _ => ToolSource::Component(path.clone()),
        },
        (None, None, Some(ComponentSource::File(path))) => ToolSource::Component(path),
        (None, None, Some(ComponentSource::Oci(reference))) => ToolSource::Oci {
            reference,
            signature: configured.as_ref().and_then(|t| t.signature().cloned()),
        },
        (None, None, None) => {
            let message =
                "no component: give its path, or a `component` in the tool's configuration";
            return report_error(json, "usage", message, exit_code::USAGE);
        }
    };
    let mut grants = match &configured {
        Some(tool) => tool.grants().clone(),
        None => Grants::none(),
    };
    if args.source.grant.is_some() {
        match args.source.network_grant() {
            Ok(network) => grants = grants.with_network(network),
            Err(e) => return report_error(json, e.code(), &e.to_string(), exit_code::USAGE),
        }
    }
    let dirs: Vec<_> = args
        .grants
        .dirs_ro
        .iter()
        .chain(&args.grants.dirs_rw)
        .collect();
    if matches!(target, ToolSource::Native(_)) && !dirs.is_empty() {
        let message = "--dir/--dir-rw are for components: a native tool's directories are `fs_read`/`fs_write` in its `native` table";
        return report_error(json, "usage", message, exit_code::USAGE);
    }
    for dir in dirs {
        grants = grants.with_dir(dir.clone());
    }

    let resolver = args.dns.is_set().then(|| args.dns.resolver());
    if args.locked {
        let checked = match &parsed {
            Some(config) => config.check_locked().map_err(|e| (e.code(), e.to_string())),
            None => Err((
                "invalid_config",
                "--locked: the configuration does not read".to_string(),
            )),
        };
        if let Err((code, message)) = checked {
            return report_error(json, code, &message, exit_code::USAGE);
        }
    }
    // The vault is opened only for tools that have secrets bound, or a
    // registry sign-in that names one.
    let logins =
        matches!(target, ToolSource::Oci { .. }) && registries.iter().any(|r| r.login().is_some());
    let vault = if grants.credentials().is_empty() && !logins {
        None
    } else {
        match super::vault::place(cli, None).and_then(|place| super::vault::open(&place)) {
            Ok(vault) => Some(vault),
            Err(e) => return report_error(json, e.code, &e.message, e.exit),
        }
    };
    let built = super::host_builder(cli, limits.fuel.is_some(), resolver, vault).and_then(|b| {
        use airlock::protected::ProtectedKind;
        let b = match &args.source.config {
            Some(config) => {
                // And the socket its `[serve]` table names, if it names one.
                let socket = parsed.as_ref().map(|parsed| {
                    airlock_serve::operator_socket_path(parsed.serve(), &cli.state_dir)
                });
                let mut b = b.protect(ProtectedKind::Config, config);
                for file in parsed.iter().flat_map(airlock::Config::companion_files) {
                    b = b.protect(ProtectedKind::Config, file);
                }
                match socket {
                    Some(socket) => b.protect(ProtectedKind::OperatorSocket, socket),
                    None => b,
                }
            }
            None => b,
        };
        let roots = parsed
            .iter()
            .flat_map(|p| p.egress_roots().iter().cloned())
            .collect();
        Ok(b.registries(registries).trust_upstream(roots).build()?)
    });
    let host = match built {
        Ok(host) => host,
        Err(e) => return report_error(json, e.code, &e.message, e.exit),
    };
    let name = configured.as_ref().map_or("", |t| t.name());
    let loaded = host.load_source(name, target, grants).await;
    let tool = match loaded {
        Ok(tool) => tool,
        Err(e) => return report_error(json, e.code(), &e.to_string(), e.exit_code()),
    };
    let mut invocation = Invocation::new(input)
        .with_limits(limits)
        .as_principal(args.principal.clone().unwrap_or_else(local_user))
        .in_context(RequestContext {
            run_id: args.run_id.clone(),
            session_id: args.session.clone(),
            device_id: args.device.clone(),
            channel: airlock::policy::Channel::named(args.channel.clone()),
        });
    if let Some(id) = &args.approval {
        invocation = invocation.under_approval(id.clone());
    }
    if let Some(wait) = args.wait {
        invocation = invocation.wait_for_approval(wait);
    }
    let mut outcome = match tool.invoke(&host, invocation.clone()).await {
        Ok(outcome) => outcome,
        Err(e) => return report_error(json, e.code(), &e.to_string(), e.exit_code()),
    };
    // On a terminal the operator is right here: ask, decide, run.
    if let Outcome::PendingApproval { approval, .. } = &outcome
        && !json
        && std::io::stderr().is_terminal()
        && let Some(decision) = approvals::prompt(&host, approval)
    {
        if let Err(e) = approvals::decide_here(cli, &approval.id, &decision) {
            return report_error(json, e.code, &e.message, e.exit);
        }
        outcome = match tool.invoke(&host, invocation).await {
            Ok(outcome) => outcome,
            Err(e) => return report_error(json, e.code(), &e.to_string(), e.exit_code()),
        };
    }

    let tool = render::ToolLabel::from(&tool);
    if json {
        outln!("{}", render::outcome_json(&tool, &outcome));
    } else if let Outcome::Completed { output, .. } = &outcome {
        outln!("{output}");
    } else if let Outcome::PendingApproval { approval, .. } = &outcome {
        // The id on stdout, for scripts; the explanation on stderr.
        outln!("{}", approval.id);
        render::print_failure(&tool, &outcome);
    } else {
        render::print_failure(&tool, &outcome);
    }
    outcome.exit_code()
}

/// `User::"$USER"`: the person at the terminal.
fn local_user() -> Principal {
    Principal::user(approvals::local_user_name())
}

type InputError = (&'static str, String, u8);

/// The input from `--input`, `--input-file` or stdin, read no further than
/// one byte past the limit so an endless stdin cannot exhaust memory.
fn read_input(args: &RunArgs, max: usize, quiet: bool) -> Result<String, InputError> {
    if let Some(input) = &args.input {
        return Ok(input.clone());
    }
    let bytes = match args.input_file.as_deref() {
        Some(path) if path.as_os_str() != "-" => {
            let file = std::fs::File::open(path).map_err(|e| {
                (
                    "read_failed",
                    format!("cannot read input file {}: {e}", path.display()),
                    exit_code::USAGE,
                )
            })?;
            read_bounded(file, max)
        }
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() && !quiet {
                eprintln!("airlock: reading the input JSON from stdin (end with Ctrl-D)");
            }
            read_bounded(stdin.lock(), max)
        }
    }
    .map_err(|e| {
        (
            "read_failed",
            format!("reading the input failed: {e}"),
            exit_code::USAGE,
        )
    })?;

    if bytes.len() > max {
        let limit = LimitExceeded::InputTooLarge {
            limit: max,
            actual: bytes.len(),
        };
        let message = format!("the input is more than {max} bytes; raise --max-input to allow it");
        return Err((limit.code(), message, exit_code::LIMIT));
    }
    String::from_utf8(bytes).map_err(|e| {
        (
            "invalid_input",
            format!(
                "the input is not UTF-8 (invalid byte at offset {}); pass JSON text",
                e.utf8_error().valid_up_to()
            ),
            exit_code::USAGE,
        )
    })
}

/// The input without the whitespace around the JSON value (`echo` adds a
/// newline): `--input`, `--input-file` and stdin hand the tool the same
/// text, the value exactly as approvals hash it.
fn json_trimmed(input: String) -> String {
    let trimmed = input.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    if trimmed.len() == input.len() {
        input
    } else {
        trimmed.to_string()
    }
}

fn read_bounded(reader: impl Read, max: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(max as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}
