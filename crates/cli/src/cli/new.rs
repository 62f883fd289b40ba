//! `airlock new`: a tool project in any language airlock builds, ready to
//! build (`./build`, the same script that builds the guests in `guests/`),
//! inspect and run. Everything it writes is embedded in the binary, so it
//! works anywhere; the toolchains come from `guests/toolchains/install`.

use super::Failure;
use airlock::{World, exit_code};
use std::path::{Path, PathBuf};

/// `airlock new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The tool's name (lowercase letters, digits, `-`): the project
    /// directory, the descriptor's name and the component's file name.
    pub name: String,
    /// The language.
    #[arg(long, value_enum)]
    pub lang: LangArg,
    /// The capability world to build against (wit/worlds.wit). `network`
    /// projects start from an HTTP fetcher, the others from a greeter.
    #[arg(long, default_value = "pure", value_parser = component_world, value_name = "WORLD")]
    pub world: airlock::World,
    /// Where to create the project (default: ./NAME). Must be empty or new.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `pure`, `network`, `files` or `network-files`.
fn component_world(text: &str) -> Result<airlock::World, String> {
    airlock::World::COMPONENTS
        .into_iter()
        .find(|world| world.as_str() == text)
        .ok_or_else(|| "choose pure, network, files or network-files".to_string())
}

/// A language `airlock new` writes projects in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LangArg {
    /// Rust (cargo, the wasm32-wasip2 target).
    Rust,
    /// Python (componentize-py).
    Python,
    /// JavaScript (componentize-js).
    Js,
    /// C (clang with wasi-libc, wit-bindgen, wasm-tools).
    C,
    /// Go (Go with wit-bindgen's Go output, wasm-tools).
    Go,
}

impl LangArg {
    /// The name `guests/build --lang` and the installer take.
    pub fn as_str(self) -> &'static str {
        match self {
            LangArg::Rust => "rust",
            LangArg::Python => "python",
            LangArg::Js => "js",
            LangArg::C => "c",
            LangArg::Go => "go",
        }
    }

    /// The name people use.
    pub fn display(self) -> &'static str {
        match self {
            LangArg::Rust => "Rust",
            LangArg::Python => "Python",
            LangArg::Js => "JavaScript",
            LangArg::C => "C",
            LangArg::Go => "Go",
        }
    }
}

/// airlock's WIT, as `wit/` of every project.
const WIT: &[(&str, &str)] = &[
    ("tool.wit", include_str!("../../../../wit/tool.wit")),
    ("worlds.wit", include_str!("../../../../wit/worlds.wit")),
    ("deps/cli.wit", include_str!("../../../../wit/deps/cli.wit")),
    (
        "deps/clocks.wit",
        include_str!("../../../../wit/deps/clocks.wit"),
    ),
    (
        "deps/filesystem.wit",
        include_str!("../../../../wit/deps/filesystem.wit"),
    ),
    (
        "deps/http.wit",
        include_str!("../../../../wit/deps/http.wit"),
    ),
    ("deps/io.wit", include_str!("../../../../wit/deps/io.wit")),
    (
        "deps/random.wit",
        include_str!("../../../../wit/deps/random.wit"),
    ),
    (
        "deps/sockets.wit",
        include_str!("../../../../wit/deps/sockets.wit"),
    ),
];

const BUILD: &str = include_str!("../../../../guests/build");

/// The greeting tool, per language (guests/templates).
fn greeting(lang: LangArg) -> &'static [(&'static str, &'static str)] {
    match lang {
        LangArg::Rust => &[
            (
                "Cargo.toml",
                include_str!("../../../../guests/templates/rust/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../../../guests/templates/rust/lib.rs"),
            ),
        ],
        LangArg::Python => &[(
            "app.py",
            include_str!("../../../../guests/templates/python/app.py"),
        )],
        LangArg::Js => &[(
            "app.js",
            include_str!("../../../../guests/templates/js/app.js"),
        )],
        LangArg::C => &[(
            "app.c",
            include_str!("../../../../guests/templates/c/app.c"),
        )],
        LangArg::Go => &[(
            "tool.go",
            include_str!("../../../../guests/templates/go/tool.go"),
        )],
    }
}

/// The language kit's `http-get`, for projects that reach the network.
fn fetcher(lang: LangArg) -> &'static [(&'static str, &'static str)] {
    match lang {
        LangArg::Rust => &[
            (
                "Cargo.toml",
                include_str!("../../../../guests/templates/rust/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../../../guests/http-get/src/lib.rs"),
            ),
            (
                "src/client.rs",
                include_str!("../../../../guests/http-get/src/client.rs"),
            ),
        ],
        LangArg::Python => &[(
            "app.py",
            include_str!("../../../../guests/python/http-get/app.py"),
        )],
        LangArg::Js => &[(
            "app.js",
            include_str!("../../../../guests/js/http-get/app.js"),
        )],
        LangArg::C => &[("app.c", include_str!("../../../../guests/c/http-get/app.c"))],
        LangArg::Go => &[(
            "tool.go",
            include_str!("../../../../guests/go/http-get/tool.go"),
        )],
    }
}

/// What `airlock new` was asked for, checked.
struct Project {
    name: String,
    lang: LangArg,
    world: World,
    dir: PathBuf,
}

impl Project {
    fn network(&self) -> bool {
        self.world.uses_network()
    }

    /// `{{name}}`, `{{world}}` and `{{world_c}}` filled in; a kit file's own
    /// name and world replaced by the project's.
    fn fill(&self, text: &str) -> String {
        let world = self.world.as_str();
        let world_c = world.replace('-', "_");
        let mut text = text
            .replace("{{name}}", &self.name)
            .replace("{{world_c}}", &world_c)
            .replace("{{world}}", world)
            .replace("\"http-get\"", &format!("\"{}\"", self.name))
            .replace("path: \"../../wit\"", "path: \"wit\"")
            .replace("world: \"network\"", &format!("world: \"{world}\""));
        if self.lang == LangArg::C && world_c != "network" {
            text = text
                .replace("\"network.h\"", &format!("\"{world_c}.h\""))
                .replace("network_string", &format!("{world_c}_string"))
                .replace("network_list_u8", &format!("{world_c}_list_u8"));
        }
        text
    }

    fn build_script(&self) -> String {
        BUILD
            .replacen(
                "\nlang=rust\n",
                &format!("\nlang={}\n", self.lang.as_str()),
                1,
            )
            .replacen(
                "\nworld=pure\n",
                &format!("\nworld={}\n", self.world.as_str()),
                1,
            )
    }

    fn input(&self) -> &'static str {
        if self.network() {
            "{\"url\": \"http://example.com/\"}\n"
        } else {
            "{\"name\": \"world\"}\n"
        }
    }

    fn readme(&self) -> String {
        let name = &self.name;
        let grant = if self.network() {
            format!(
                "\nThe tool reaches the network only where a grant allows it. `grant.toml` allows\n\
                 example.com; run with it:\n\n    airlock run {name}.wasm --grant grant.toml --input-file input.json\n\n\
                 Without `--grant` the request is denied (`tool_denied`, reason `host_not_allowed`).\n"
            )
        } else {
            String::new()
        };
        format!(
            "# {name}\n\nAn airlock tool in {lang}, built against the `{world}` world.\n\n\
             ```sh\n# build: writes {name}.wasm\n./build\n\
             # what it is: world, imports, describe()\nairlock inspect {name}.wasm\n\
             # run it once\nairlock run {name}.wasm --input-file input.json\n```\n{grant}\n\
             `./build` needs the {lang} toolchain: from a clone of the airlock repository,\n\
             `guests/toolchains/install {toolchain}` installs it (pinned, offline afterwards).\n\
             `wit/` is airlock's tool interface; `{source}` is the tool.\n",
            lang = self.lang.display(),
            world = self.world.as_str(),
            toolchain = self.lang.as_str(),
            source = self.files().first().map_or("", |(path, _)| path),
        )
    }

    fn files(&self) -> &'static [(&'static str, &'static str)] {
        if self.network() {
            fetcher(self.lang)
        } else {
            greeting(self.lang)
        }
    }

    /// Every file of the project, paths relative to its directory.
    fn contents(&self) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = WIT
            .iter()
            .map(|(path, text)| (format!("wit/{path}"), (*text).to_string()))
            .collect();
        for (path, text) in self.files() {
            files.push(((*path).to_string(), self.fill(text)));
        }
        files.push(("build".into(), self.build_script()));
        files.push(("input.json".into(), self.input().into()));
        files.push(("README.md".into(), self.readme()));
        files.push((
            ".gitignore".into(),
            "*.wasm\ntarget/\n__pycache__/\n".into(),
        ));
        if self.network() {
            files.push((
                "grant.toml".into(),
                "# The origins this tool may reach (`airlock run --grant grant.toml`).\n\
                 [[allow]]\nhost = \"example.com\"\n"
                    .into(),
            ));
        }
        files
    }
}

/// A tool name every toolchain accepts as a file, crate and descriptor name.
fn check_name(name: &str) -> Result<(), Failure> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Failure::usage(
            "invalid_name",
            format!(
                "`{name}` is not a usable tool name: use lowercase letters, digits and `-`, \
                 starting with a letter (e.g. `weather-lookup`)"
            ),
        ))
    }
}

/// `airlock new`.
pub fn new(args: &NewArgs) -> u8 {
    match create(args) {
        Ok(project) => {
            outln!(
                "created {} ({} tool, world {})",
                project.dir.display(),
                project.lang.display(),
                project.world.as_str()
            );
            outln!("next:");
            outln!("  cd {}", project.dir.display());
            outln!("  ./build");
            outln!("  airlock inspect {}.wasm", project.name);
            outln!(
                "  airlock run {}.wasm --input-file input.json",
                project.name
            );
            exit_code::OK
        }
        Err(failure) => failure.report(),
    }
}

fn create(args: &NewArgs) -> Result<Project, Failure> {
    check_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let occupied = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(Failure::usage(
            "directory_not_empty",
            format!(
                "{} already exists and is not empty: choose another name or `--dir`",
                dir.display()
            ),
        ));
    }
    let project = Project {
        name: args.name.clone(),
        lang: args.lang,
        world: args.world,
        dir,
    };
    for (path, text) in project.contents() {
        write(&project.dir.join(&path), &text, path == "build")?;
    }
    Ok(project)
}

fn write(path: &Path, text: &str, executable: bool) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure {
        code: "write_failed",
        message: format!("cannot write {}: {e}", path.display()),
        exit: exit_code::USAGE,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for (name, ok) in [
            ("weather", true),
            ("weather-lookup2", true),
            ("Weather", false),
            ("2fast", false),
            ("a_b", false),
            ("trailing-", false),
            ("", false),
            ("../escape", false),
        ] {
            assert_eq!(check_name(name).is_ok(), ok, "{name}");
        }
    }

    #[test]
    fn c_network_files_projects_use_that_worlds_bindings() {
        let project = Project {
            name: "fetch".into(),
            lang: LangArg::C,
            world: World::NetworkFiles,
            dir: PathBuf::from("fetch"),
        };
        let source = project
            .contents()
            .into_iter()
            .find(|(path, _)| path == "app.c")
            .map(|(_, text)| text)
            .expect("app.c");
        assert!(source.contains("#include \"network_files.h\""));
        assert!(source.contains("network_files_string_dup(&ret->name, \"fetch\")"));
        assert!(!source.contains("network_string"));
    }

    #[test]
    fn the_build_script_defaults_to_the_project() {
        let project = Project {
            name: "greet".into(),
            lang: LangArg::Python,
            world: World::Files,
            dir: PathBuf::from("greet"),
        };
        let script = project.build_script();
        assert!(script.contains("\nlang=python\n") && script.contains("\nworld=files\n"));
        assert!(!script.contains("\nlang=rust\n"));
    }
}
