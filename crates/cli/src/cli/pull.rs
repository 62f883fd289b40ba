//! `airlock pull`: resolve an `oci://` reference to a digest and keep its
//! component in the state directory's content store.

use super::Failure;
use super::args::{Cli, PullArgs};
use airlock::Config;
use airlock::config::RegistrySettings;
use airlock::exit_code;
use airlock::oci::{ComponentRef, Resolution};
use serde_json::json;

pub async fn pull(cli: &Cli, args: &PullArgs) -> u8 {
    match run(cli, args).await {
        Ok(()) => exit_code::OK,
        Err(failure) => failure.report_json(args.json),
    }
}

async fn run(cli: &Cli, args: &PullArgs) -> Result<(), Failure> {
    let reference = oci_reference(&args.reference)?;
    let (host, registries) = registry_host(cli, args.config.as_deref())?;
    let trust = required_trust(&registries, &reference)?;
    let (resolved, pulled) = host.pull(&reference, trust.as_ref()).await?;
    let moved_from = match resolved.how() {
        Resolution::Registry { moved_from } => moved_from,
        _ => None,
    };
    let how = match resolved.how() {
        Resolution::Written => "written",
        Resolution::Registry { .. } => "registry",
        Resolution::Offline => "offline",
    };
    if args.json {
        outln!(
            "{}",
            json!({
                "reference": pulled.reference.to_string(),
                "manifest": pulled.manifest.to_string(),
                "component_sha256": pulled.layer.digest.hex(),
                "size": pulled.bytes.len(),
                "resolved": how,
                "moved_from": moved_from.map(|d| d.to_string()),
                "signer": pulled.signer.as_ref().map(|s| s.to_string()),
            })
        );
    } else {
        outln!("pulled      {}", pulled.reference);
        outln!("manifest    {}", pulled.manifest);
        outln!(
            "component   sha256 {} ({} bytes)",
            pulled.layer.digest.hex(),
            pulled.bytes.len()
        );
        if let Some(from) = moved_from {
            outln!("note        the tag moved: it named {from} when last pulled");
        }
        if resolved.how() == Resolution::Offline {
            outln!(
                "note        the registry did not answer: this is the digest the tag had when last pulled"
            );
        }
    }
    Ok(())
}

/// Parses an `oci://` reference given on the command line.
pub(crate) fn oci_reference(text: &str) -> Result<ComponentRef, Failure> {
    text.parse()
        .map_err(|e: airlock::oci::RefError| Failure::usage("invalid_reference", e.to_string()))
}

/// The signature `config`'s `[registries]` require of `reference`.
pub(crate) fn required_trust(
    registries: &[RegistrySettings],
    reference: &ComponentRef,
) -> Result<Option<airlock::oci::Trust>, Failure> {
    airlock::config::required_trust(registries, reference, None)
        .map_err(|e| Failure::usage("invalid_config", e.to_string()))
}

/// A host that can pull: the state directory's store, and the sign-ins of
/// `config`'s `[registries]` tables (opening the vault when one names a
/// secret), with those tables.
pub(crate) fn registry_host(
    cli: &Cli,
    config: Option<&std::path::Path>,
) -> Result<(airlock::Host, Vec<RegistrySettings>), Failure> {
    let registries = match config {
        Some(path) => Config::from_file(path)?.registries().to_vec(),
        None => Vec::new(),
    };
    let vault = if registries.iter().any(|r| r.login().is_some()) {
        Some(super::vault::open(&super::vault::place(cli, None)?)?)
    } else {
        None
    };
    let host = super::host_builder(cli, false, None, vault)?
        .registries(registries.clone())
        .build()?;
    Ok((host, registries))
}
