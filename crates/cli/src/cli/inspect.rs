//! `airlock inspect`: what a component is and which world it belongs to;
//! for `oci://…`, also where it came from.

use super::args::{Cli, InspectArgs};
use super::render;
use airlock::{Grants, LoadError, Provenance, Source, exit_code};

pub async fn inspect(cli: &Cli, args: &InspectArgs) -> u8 {
    let fail = |code: &str, message: String, exit: u8| {
        if args.json {
            outln!("{}", render::error_json(code, &message, exit));
        }
        super::fail(code, &message, exit)
    };
    let shown = args.component.display().to_string();
    let oci = args
        .component
        .to_str()
        .filter(|text| text.starts_with(airlock::oci::reference::SCHEME));
    let (label, info, provenance, source) = match oci {
        Some(text) => {
            let pulled = async {
                let reference = super::pull::oci_reference(text)?;
                let (host, registries) = super::pull::registry_host(cli, args.config.as_deref())?;
                let trust = super::pull::required_trust(&registries, &reference)?;
                Ok::<_, super::Failure>(host.pull(&reference, trust.as_ref()).await?)
            }
            .await;
            let pulled = match pulled {
                Ok((_, pulled)) => pulled,
                Err(f) => return fail(f.code, f.message, f.exit),
            };
            (
                pulled.reference.to_string(),
                airlock::inspect(&pulled.bytes),
                Some(Provenance::of(&pulled)),
                Source::Pulled(Box::new(pulled)),
            )
        }
        None => match airlock::read_component(&args.component) {
            Ok(bytes) => (shown, airlock::inspect(&bytes), None, Source::Bytes(bytes)),
            Err(e) => return fail(e.code(), e.to_string(), e.exit_code()),
        },
    };
    let info = match info {
        Ok(info) => info,
        Err(e) => {
            let e = LoadError::from(e);
            return fail(e.code(), format!("{label}: {e}"), e.exit_code());
        }
    };

    // Loading also compiles, links and calls describe(): the component is
    // only usable as a tool if that works too.
    let loaded = match super::build_host(cli, false, None, None) {
        Ok(host) => host.load(source, Grants::none()).await,
        Err(e) => return fail(e.code, e.message, e.exit),
    };
    let described = loaded
        .as_ref()
        .map(|tool| tool.descriptor())
        .map_err(|e| (e.code(), e.to_string()));
    if args.json {
        outln!(
            "{}",
            render::info_json(&label, &info, provenance.as_ref(), described)
        );
    } else {
        render::print_info(&label, &info, provenance.as_ref(), described);
    }
    match &loaded {
        Ok(_) => exit_code::OK,
        Err(e) => e.exit_code(),
    }
}
