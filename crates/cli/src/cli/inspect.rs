//! `airlock inspect`: what a component is and which world it belongs to.

use super::args::{Cli, InspectArgs};
use super::render;
use airlock::{Grants, LoadError, exit_code};

pub async fn inspect(cli: &Cli, args: &InspectArgs) -> u8 {
    let path = args.component.as_path();
    let fail = |code: &str, message: String, exit: u8| {
        if args.json {
            outln!("{}", render::error_json(code, &message, exit));
        }
        super::fail(code, &message, exit)
    };
    let bytes = match airlock::read_component(path) {
        Ok(bytes) => bytes,
        Err(e) => return fail(e.code(), e.to_string(), e.exit_code()),
    };
    let info = match airlock::inspect(&bytes) {
        Ok(info) => info,
        Err(e) => {
            let e = LoadError::from(e);
            return fail(e.code(), format!("{}: {e}", path.display()), e.exit_code());
        }
    };

    // Loading also compiles, links and calls describe(): the component is
    // only usable as a tool if that works too.
    let loaded = match super::build_host(cli, false, None, None) {
        Ok(host) => host.load(bytes, Grants::none()).await,
        Err(e) => return fail(e.code, e.message, e.exit),
    };
    let described = loaded
        .as_ref()
        .map(|tool| tool.descriptor())
        .map_err(|e| (e.code(), e.to_string()));
    if args.json {
        outln!("{}", render::info_json(path, &info, described));
    } else {
        render::print_info(path, &info, described);
    }
    match &loaded {
        Ok(_) => exit_code::OK,
        Err(e) => e.exit_code(),
    }
}
