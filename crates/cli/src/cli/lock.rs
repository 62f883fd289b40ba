//! `airlock lock`: resolve every `oci://` tool of a configuration to a
//! digest and write `airlock.lock` beside it. Existing pins stay unless
//! `--update` names the tool (or all); every change is printed.

use super::Failure;
use super::args::{Cli, LockArgs};
use airlock::config::{ComponentSource, LockEntry, Lockfile};
use airlock::{Config, exit_code};
use serde_json::json;

pub async fn lock(cli: &Cli, args: &LockArgs) -> u8 {
    match run(cli, args).await {
        Ok(()) => exit_code::OK,
        Err(failure) => failure.report_json(args.json),
    }
}

/// One line of what `airlock lock` did.
enum Change {
    Added(LockEntry),
    Moved { from: LockEntry, to: LockEntry },
    Kept(LockEntry),
    Removed(LockEntry),
}

async fn run(cli: &Cli, args: &LockArgs) -> Result<(), Failure> {
    let config = Config::from_file(&args.config)?;
    // The lockfile as the configuration read it.
    let (path, read) = config
        .lockfile()
        .map(|(path, lock)| (path.to_path_buf(), lock.cloned()))
        .unwrap_or_else(|| (Lockfile::beside(&args.config), None));
    let mut lockfile = read.unwrap_or_default();
    let registry_tools: Vec<_> = config
        .tools()
        .iter()
        .filter_map(|tool| match tool.component() {
            Some(ComponentSource::Oci(reference)) => Some((tool, reference)),
            _ => None,
        })
        .collect();
    let update_all = args.update.as_ref().is_some_and(Option::is_none);
    if let Some(Some(name)) = &args.update
        && !registry_tools.iter().any(|(tool, _)| tool.name() == name)
    {
        return Err(Failure::usage(
            "unknown_tool",
            format!(
                "`{name}` is not a tool with an oci:// component in {}",
                args.config.display()
            ),
        ));
    }
    let (host, _) = super::pull::registry_host(cli, Some(&args.config))?;
    let mut changes = Vec::new();
    for (tool, reference) in &registry_tools {
        let update =
            update_all || args.update.as_ref().and_then(Option::as_deref) == Some(tool.name());
        if let Some(pinned) = lockfile.entry(tool.name(), reference)
            && !update
        {
            changes.push(Change::Kept(pinned.clone()));
            continue;
        }
        let (_, pulled) = host.pull(reference, tool.signature()).await?;
        let entry = LockEntry {
            tool: tool.name().to_string(),
            reference: reference.to_string(),
            digest: pulled.manifest,
            component: pulled.layer.digest,
            registry: reference.registry().to_string(),
            signer: pulled.signer.as_ref().map(ToString::to_string),
            locked_at: airlock::config::lock_time(),
        };
        changes.push(match lockfile.set(entry.clone()) {
            Some(from) if from.digest == entry.digest && from.reference == entry.reference => {
                // Nothing moved: keep the original time.
                lockfile.set(from.clone());
                Change::Kept(from)
            }
            Some(from) => Change::Moved { from, to: entry },
            None => Change::Added(entry),
        });
    }
    let names: Vec<&str> = registry_tools.iter().map(|(tool, _)| tool.name()).collect();
    changes.extend(lockfile.retain(&names).into_iter().map(Change::Removed));
    lockfile.write(&path)?;
    report(args.json, &path, &changes);
    Ok(())
}

fn report(json: bool, path: &std::path::Path, changes: &[Change]) {
    if json {
        let rows: Vec<_> = changes
            .iter()
            .map(|change| match change {
                Change::Added(e) => json!({"tool": e.tool, "change": "added", "reference": e.reference, "digest": e.digest}),
                Change::Kept(e) => json!({"tool": e.tool, "change": "kept", "reference": e.reference, "digest": e.digest}),
                Change::Removed(e) => json!({"tool": e.tool, "change": "removed", "reference": e.reference, "digest": e.digest}),
                Change::Moved { from, to } => json!({"tool": to.tool, "change": "moved", "reference": to.reference, "digest": to.digest, "from": from.digest, "from_reference": from.reference}),
            })
            .collect();
        outln!(
            "{}",
            json!({"lockfile": path.display().to_string(), "tools": rows})
        );
        return;
    }
    for change in changes {
        match change {
            Change::Added(e) => outln!("+ {}  {}  {}", e.tool, e.reference, e.digest),
            Change::Kept(e) => outln!("  {}  {}  {}", e.tool, e.reference, e.digest),
            Change::Removed(e) => outln!("- {}  {}  {}", e.tool, e.reference, e.digest),
            Change::Moved { from, to } => {
                outln!(
                    "~ {}  {}  {} -> {}",
                    to.tool,
                    to.reference,
                    from.digest,
                    to.digest
                );
                if from.reference != to.reference {
                    outln!("    (was {})", from.reference);
                }
            }
        }
    }
    outln!("wrote {}", path.display());
}
