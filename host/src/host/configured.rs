//! [`ConfiguredTool`]: a tool from `airlock.toml`, loaded, whichever kind
//! it is: a component, or a native program in the platform sandbox. Both
//! go through the same admission, limits, journal and attestation; this
//! type lets callers (`airlock run`, `airlock serve`) hold either.

use crate::Host;
use crate::config::ToolConfig;
use crate::grants::DirAccess;
use crate::invocation::Invocation;
use crate::kernel::Executor;
use crate::limits::Limits;
use crate::native::{NativeError, NativeSpec, NativeTool};
use crate::outcome::{InvokeError, Outcome, exit_code};
use crate::policy::ToolFacts;
use crate::runtime::{LoadError, Tool};
use crate::servers::HostedTool;
use crate::vocabulary::{Capability, World};
use std::path::PathBuf;

/// The input schema of a native tool whose configuration gives none.
pub const ANY_OBJECT_SCHEMA: &str = r#"{"type":"object"}"#;

/// A loaded tool of either kind.
#[derive(Clone, Debug)]
pub struct ConfiguredTool {
    kind: Kind,
    description: String,
    input_schema: String,
    limits: Option<Limits>,
}

#[derive(Clone, Debug)]
enum Kind {
    Component(Tool),
    Native(Box<NativeTool>),
    Hosted(Box<HostedTool>),
}

/// Why a configured tool could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfiguredError {
    /// The component did not load.
    #[error("{}: {source}", path.display())]
    Component {
        /// The component file.
        path: PathBuf,
        /// Why.
        source: LoadError,
    },
    /// The native program did not load.
    #[error("tool `{name}`: {source}")]
    Native {
        /// The tool.
        name: String,
        /// Why.
        source: NativeError,
    },
    /// The component could not be pulled from its registry.
    #[error("{reference}: {source}")]
    Pull {
        /// The reference.
        reference: Box<crate::oci::ComponentRef>,
        /// Why.
        source: Box<super::RegistryError>,
    },
    /// The pulled component did not load.
    #[error("{reference}: {source}")]
    Pulled {
        /// The reference.
        reference: Box<crate::oci::ComponentRef>,
        /// Why.
        source: LoadError,
    },
    /// The entry names neither a component nor a program.
    #[error(
        "tool `{name}` has neither `component` nor `native`: give the component file or the program to run"
    )]
    NothingToRun {
        /// The tool.
        name: String,
    },
}

impl ConfiguredError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ConfiguredError::Component { source, .. } => source.code(),
            ConfiguredError::Native { source, .. } => source.code(),
            ConfiguredError::Pull { source, .. } => source.code(),
            ConfiguredError::Pulled { source, .. } => source.code(),
            ConfiguredError::NothingToRun { .. } => "nothing_to_run",
        }
    }

    /// The CLI's exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfiguredError::Component { source, .. } | ConfiguredError::Pulled { source, .. } => {
                source.exit_code()
            }
            // No signature, or not the required signer's: a refusal.
            ConfiguredError::Pull { source, .. } if source.is_denial() => exit_code::DENIED,
            _ => exit_code::USAGE,
        }
    }
}

/// What a tool runs.
#[derive(Clone, Debug)]
pub enum ToolSource {
    /// A WASI component file.
    Component(PathBuf),
    /// A WASI component in a registry, and whose signature it must carry.
    Oci {
        /// Where it is.
        reference: crate::oci::ComponentRef,
        /// The signature required, if any.
        signature: Option<crate::oci::Trust>,
    },
    /// A native program and how to sandbox it.
    Native(Box<NativeSpec>),
}

impl From<Tool> for ConfiguredTool {
    fn from(tool: Tool) -> Self {
        Self::new(Kind::Component(tool))
    }
}

impl From<NativeTool> for ConfiguredTool {
    fn from(tool: NativeTool) -> Self {
        Self::new(Kind::Native(Box::new(tool)))
    }
}

impl ConfiguredTool {
    /// A tool with its own description and schema (a native program has
    /// none: it gets a plain one and [`ANY_OBJECT_SCHEMA`]).
    fn new(kind: Kind) -> Self {
        let (description, input_schema) = match &kind {
            Kind::Component(tool) => (
                tool.descriptor().description.clone(),
                tool.descriptor().input_schema.clone(),
            ),
            Kind::Native(tool) => (
                format!("runs {} in a sandbox", tool.program().display()),
                ANY_OBJECT_SCHEMA.to_string(),
            ),
            Kind::Hosted(tool) => (
                format!(
                    "tool `{}` of server `{}`",
                    tool.remote_name(),
                    tool.server().name()
                ),
                ANY_OBJECT_SCHEMA.to_string(),
            ),
        };
        Self {
            kind,
            description,
            input_schema,
            limits: None,
        }
    }

    /// Runs the tool once (see [`Host::invoke`] and [`Host::invoke_native`]),
    /// under the configured limits when the invocation brings none.
    pub async fn invoke(
        &self,
        host: &Host,
        mut invocation: Invocation,
    ) -> Result<Outcome, InvokeError> {
        if invocation.limits.is_none() {
            invocation.limits = self.limits.clone();
        }
        host.kernel().run(self.executor(), invocation).await
    }

    /// The executor behind it.
    fn executor(&self) -> &dyn Executor {
        match &self.kind {
            Kind::Component(tool) => tool,
            Kind::Native(tool) => tool.as_ref(),
            Kind::Hosted(tool) => tool.as_ref(),
        }
    }

    /// The operator's description, schema and limits from `config`, which
    /// win over the tool's own.
    pub(crate) fn configured_by(mut self, config: &ToolConfig) -> Self {
        if let Some(description) = config.description() {
            self.description = description.to_string();
        }
        if let Some(schema) = config.input_schema() {
            self.input_schema = schema.to_string();
        }
        self.limits = config.limits().cloned();
        self
    }

    /// The limits from the tool's configuration, if it has a `limits` table.
    pub fn limits(&self) -> Option<&Limits> {
        self.limits.as_ref()
    }

    /// What policies see: name, world, capabilities, digest, sensitivity.
    pub fn facts(&self) -> &ToolFacts {
        self.executor().facts()
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.facts().name
    }

    /// The component's version (native programs have none).
    pub fn version(&self) -> Option<&str> {
        match &self.kind {
            Kind::Component(tool) => Some(&tool.descriptor().version),
            Kind::Native(_) | Kind::Hosted(_) => None,
        }
    }

    /// SHA-256 of the component or program, hex.
    pub fn sha256(&self) -> &str {
        &self.facts().sha256
    }

    /// `pure`, `network`, `files`, `network-files`, or `native`.
    pub fn world(&self) -> World {
        self.facts().world
    }

    /// What the tool does, for people and models.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The JSON Schema of its input (JSON text).
    pub fn input_schema(&self) -> &str {
        &self.input_schema
    }

    /// Whether the tool may reach the network.
    pub fn reaches_network(&self) -> bool {
        self.facts().capabilities.contains(&Capability::Network)
    }

    /// Whether the tool can change things outside itself: a native program,
    /// or a component granted a read-write directory.
    pub fn may_write(&self) -> bool {
        match &self.kind {
            Kind::Component(tool) => tool
                .grants()
                .dirs()
                .iter()
                .any(|d| d.access() == DirAccess::ReadWrite),
            Kind::Native(_) => true,
            Kind::Hosted(tool) => !tool.server().config().fs_write.is_empty(),
        }
    }

    /// What an approval of this tool binds, with the one line an approver
    /// reads (the network rules, credentials, directories; for native
    /// programs the mounts and network mode too).
    pub fn binding(&self) -> crate::approvals::GrantBinding {
        self.executor().binding()
    }

    /// The vault secrets the host injects for this tool (names only).
    pub fn credential_names(&self) -> Vec<String> {
        match &self.kind {
            Kind::Component(tool) => tool
                .grants()
                .credentials()
                .iter()
                .map(|c| c.secret().to_string())
                .collect(),
            Kind::Native(_) | Kind::Hosted(_) => Vec::new(),
        }
    }

    /// The hosted server's tool, if it is one.
    pub fn as_hosted(&self) -> Option<&HostedTool> {
        match &self.kind {
            Kind::Hosted(tool) => Some(tool),
            Kind::Component(_) | Kind::Native(_) => None,
        }
    }

    /// A hosted server's tool, served with the server's `description` and
    /// input schema (JSON text).
    pub fn hosted(tool: HostedTool, description: Option<String>, input_schema: String) -> Self {
        let mut configured = Self::new(Kind::Hosted(Box::new(tool)));
        if let Some(description) = description {
            configured.description = description;
        }
        configured.input_schema = input_schema;
        configured
    }
}
