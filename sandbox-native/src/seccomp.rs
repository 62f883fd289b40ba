//! The seccomp filter every bubblewrap sandbox gets: system calls a tool
//! never needs and an escape often does fail with `EPERM`.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
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
    // io_uring makes sockets (and opens files) without the system calls
    // the rules below look at.
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
];

/// The only address families `socket()` may make: IP (in the sandbox's own
/// network namespace, where nothing but its loopback and strict mode's
/// bridge are) and netlink (which programs read their interfaces with).
/// Everything else is refused: `AF_UNIX` because a granted directory can
/// hold the sockets of the server's user's own services (an agent, a
/// user's Docker), which a read-only bind does not keep from a `connect`;
/// `AF_VSOCK` and friends because a network namespace does not isolate
/// them. Strict mode's bridge uses the channel it inherits.
const SOCKET_FAMILIES: &[(&str, u64)] = &[
    ("AF_INET", libc::AF_INET as u64),
    ("AF_INET6", libc::AF_INET6 as u64),
    ("AF_NETLINK", libc::AF_NETLINK as u64),
];

/// `socketpair` makes only `AF_UNIX` stream pairs, which are connected
/// already and so reach nothing (event loops use them). A datagram end
/// (`SOCK_DGRAM`, and `SOCK_RAW`, which the kernel turns into one) could
/// still `sendto` a socket's path; other families bring back what
/// `socket()` refuses.
const SOCKETPAIR_FAMILY: u64 = libc::AF_UNIX as u64;
const SOCKETPAIR_KIND: u64 = libc::SOCK_STREAM as u64;

/// The mask of a socket type's kind (without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`).
const SOCKET_TYPE_MASK: u64 = 0xf;

/// Terminal ioctls that push input into another program's terminal.
const DENIED_IOCTLS: &[(&str, u64)] = &[("TIOCSTI", 0x5412), ("TIOCLINUX", 0x541C)];

/// The names of everything the filter refuses, for documentation and tests.
pub fn denied_names() -> impl Iterator<Item = &'static str> {
    DENIED
        .iter()
        .map(|(name, _)| *name)
        .chain(DENIED_IOCTLS.iter().map(|(name, _)| *name))
        .chain(std::iter::once(
            "socket(any family but AF_INET, AF_INET6, AF_NETLINK)",
        ))
        .chain(std::iter::once(
            "socketpair(anything but AF_UNIX, SOCK_STREAM)",
        ))
        .chain(std::iter::once("every x32 system call"))
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
    // One rule: matched (refused) when the family is none of the allowed.
    let other_family = SOCKET_FAMILIES
        .iter()
        .map(|(_, family)| {
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *family)
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(
        i64::from(libc::SYS_socket),
        vec![SeccompRule::new(other_family)?],
    );
    // Refused when the family is not AF_UNIX, or the kind is any but
    // SOCK_STREAM (seccomp has no masked "not equal": one rule per kind).
    let mut socketpair_rules = vec![SeccompRule::new(vec![SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Ne,
        SOCKETPAIR_FAMILY,
    )?])?];
    for kind in (0..=SOCKET_TYPE_MASK).filter(|kind| *kind != SOCKETPAIR_KIND) {
        socketpair_rules.push(SeccompRule::new(vec![SeccompCondition::new(
            1,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(SOCKET_TYPE_MASK),
            kind,
        )?])?);
    }
    rules.insert(i64::from(libc::SYS_socketpair), socketpair_rules);
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    let filtered: BpfProgram = filter.try_into()?;
    let mut program = x32_guard(arch);
    program.extend(filtered);
    Ok(encode(&program))
}

/// Instructions as the bytes of a `struct sock_filter` array.
fn encode(program: &[sock_filter]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    bytes
}

/// The bit x86_64's x32 ABI sets in a system call's number
/// (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// On x86_64, instructions that fail every x32 system call with `ENOSYS`
/// before the rules run: x32 calls share the x86_64 audit architecture but
/// have their own numbers, so each rule above would miss its x32 twin (a
/// kernel built with x32 would let `socket(AF_UNIX)` through that way).
/// Prepended, so the program's own forward jumps are unaffected.
fn x32_guard(arch: TargetArch) -> Vec<sock_filter> {
    if arch != TargetArch::x86_64 {
        return Vec::new();
    }
    let op = |code: u32| code as u16;
    vec![
        // A = seccomp_data.nr (offset 0)
        sock_filter {
            code: op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS),
            jt: 0,
            jf: 0,
            k: 0,
        },
        // if (A & X32_SYSCALL_BIT) fall through to the return, else skip it
        sock_filter {
            code: op(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K),
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        sock_filter {
            code: op(libc::BPF_RET | libc::BPF_K),
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the guard's instructions on a system call number the way the
    /// kernel would, returning what it answers (`None`: on to the rules).
    fn guard_answer(guard: &[sock_filter], nr: u32) -> Option<u32> {
        let mut accumulator = 0;
        let mut at = 0;
        while let Some(instruction) = guard.get(at) {
            let code = u32::from(instruction.code);
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                assert_eq!(instruction.k, 0, "loads the number");
                accumulator = nr;
            } else if code == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K {
                let skip = if accumulator & instruction.k != 0 {
                    instruction.jt
                } else {
                    instruction.jf
                };
                at += usize::from(skip);
            } else if code == libc::BPF_RET | libc::BPF_K {
                return Some(instruction.k);
            } else {
                panic!("unexpected instruction {instruction:?}");
            }
            at += 1;
        }
        None
    }

    #[test]
    fn x32_calls_fail_before_the_rules_and_others_reach_them() {
        let guard = x32_guard(TargetArch::x86_64);
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let x32_socket = X32_SYSCALL_BIT | libc::SYS_socket as u32;
        assert_eq!(guard_answer(&guard, x32_socket), Some(enosys));
        assert_eq!(guard_answer(&guard, libc::SYS_socket as u32), None);
        assert!(x32_guard(TargetArch::aarch64).is_empty());
        let program = program().expect("the filter compiles");
        if std::env::consts::ARCH == "x86_64" {
            assert!(
                program.starts_with(&encode(&guard)),
                "the guard comes first"
            );
        }
    }
}
