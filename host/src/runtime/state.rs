//! Per-invocation store data: the WASI context built from the tool's grants,
//! the HTTP context with airlock's egress hook, and the limiter.

use super::stdio::CapturedOutput;
use crate::egress::EgressHook;
use crate::grants::{DirAccess, GrantError, ResolvedGrants};
use crate::limits::{Limiter, Limits};
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The `T` in `Store<T>` for every invocation.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: EgressHook,
    pub(crate) limiter: Limiter,
    /// When the invocation must end; checked on every epoch tick.
    pub(crate) deadline: Instant,
}

impl StoreState {
    /// Builds the state for one invocation. Only what `grants` names is
    /// visible: no environment, no arguments, empty stdin, no sockets, and
    /// HTTP only through `hooks`.
    pub(crate) fn new(
        hooks: EgressHook,
        grants: &ResolvedGrants,
        limits: &Limits,
        stdout: &CapturedOutput,
        stderr: &CapturedOutput,
        deadline: Instant,
    ) -> Result<Self, GrantError> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (index, dir) in grants.grants().dirs().iter().enumerate() {
            let perms = match dir.access() {
                DirAccess::ReadOnly => FsPerms::ReadOnly,
                DirAccess::ReadWrite => FsPerms::ReadWrite,
            };
            wasi.preopened_dir(grants.preopen_path(index), dir.guest(), perms)
                .map_err(|e| GrantError::HostDir {
                    path: dir.host().to_path_buf(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        }
        Ok(Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks,
            limiter: Limiter::new(limits),
            deadline,
        })
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
