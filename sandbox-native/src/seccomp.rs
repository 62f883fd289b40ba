//! The seccomp filter every bubblewrap sandbox gets: system calls a tool
//! never needs and an escape often does fail with `EPERM`.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// Refused outright: debugging other processes, mounting, the kernel
/// keyring, eBPF, new namespaces, kernel modules, and the rest of the
/// kernel's administrative surface.
const DENIED: &[(&str, libc::c_long)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("bpf", libc::SYS_bpf),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("kexec_load", libc::SYS_kexec_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
];

/// `socket(AF_UNIX, …)`: a granted directory can hold the sockets of the
/// server's user's own services (an agent, a user's Docker, a desktop
/// session's), which a read-only bind does not keep from a `connect`.
/// `socketpair` (what event loops use) stays allowed, and strict mode's
/// bridge uses the channel it inherits.
const DENIED_SOCKET_DOMAINS: &[(&str, u64)] = &[("socket(AF_UNIX)", libc::AF_UNIX as u64)];

/// Terminal ioctls that push input into another program's terminal.
const DENIED_IOCTLS: &[(&str, u64)] = &[("TIOCSTI", 0x5412), ("TIOCLINUX", 0x541C)];

/// The names of everything the filter refuses, for documentation and tests.
pub fn denied_names() -> impl Iterator<Item = &'static str> {
    DENIED
        .iter()
        .map(|(name, _)| *name)
        .chain(DENIED_IOCTLS.iter().map(|(name, _)| *name))
        .chain(DENIED_SOCKET_DOMAINS.iter().map(|(name, _)| *name))
}

/// The filter as the raw `struct sock_filter` array bubblewrap's
/// `--seccomp FD` reads.
// `c_long` is `i64` here but `i32` on 32-bit targets: the conversions stay.
#[allow(clippy::useless_conversion)]
pub fn program() -> Result<Vec<u8>, seccompiler::BackendError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .map(|(_, number)| (i64::from(*number), Vec::new()))
        .collect();
    let ioctl_rules = DENIED_IOCTLS
        .iter()
        .map(|(_, request)| {
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *request)
                .and_then(|c| SeccompRule::new(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(i64::from(libc::SYS_ioctl), ioctl_rules);
    let socket_rules = DENIED_SOCKET_DOMAINS
        .iter()
        .map(|(_, domain)| {
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *domain)
                .and_then(|c| SeccompRule::new(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(i64::from(libc::SYS_socket), socket_rules);
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    let program: BpfProgram = filter.try_into()?;
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    Ok(bytes)
}
