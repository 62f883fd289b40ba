//! The channel between a strict sandbox and the host's egress proxy: a Unix
//! socket pair with no name on any file system. The host keeps one end; the
//! sandbox inherits the other as a file descriptor, and its bridge is the
//! only program that holds it. To reach the proxy the bridge writes one
//! byte; the host answers with one byte carrying a freshly connected stream
//! socket (`SCM_RIGHTS`), whose other end it serves.
//!
//! So no other process can use a tool's proxy, whatever uid the sandbox
//! runs as: there is no path to connect to, only a descriptor to hold. (A
//! process that can trace the bridge could take it; that needs the
//! sandbox's uid, and then the tool itself could be traced too.)

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// Both ends of a new channel.
#[derive(Debug)]
pub struct ProxyChannel {
    /// The host's end: requests arrive here, connections leave from here.
    pub host: OwnedFd,
    /// The sandbox's end, handed to the sandbox by number
    /// ([`NetworkMode::Strict`](crate::NetworkMode::Strict)).
    pub sandbox: OwnedFd,
}

impl ProxyChannel {
    /// A new channel. Both ends are close-on-exec: the backend clears the
    /// flag on the sandbox's end in the one child that must inherit it.
    pub fn new() -> io::Result<Self> {
        let (host, sandbox) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SOCKET_FLAGS, None)?;
        // Where the kernel cannot make them close-on-exec at once (macOS).
        keep_from_children(host.as_fd())?;
        keep_from_children(sandbox.as_fd())?;
        Ok(Self { host, sandbox })
    }

    /// The sandbox end's number, for the plan.
    pub fn sandbox_fd(&self) -> RawFd {
        self.sandbox.as_raw_fd()
    }
}

/// Reads pending requests on the host's end into `buf`: each byte asks for
/// one connection. `Ok(0)`: the sandbox's end is closed everywhere.
pub fn take_requests(host: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::io::read(host, buf)?)
}

/// Sends `stream` (one end of a connection the host serves) to the sandbox
/// in answer to one request.
pub fn hand_over(host: BorrowedFd<'_>, stream: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [stream];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("no room for the descriptor"));
    }
    let sent = rustix::net::sendmsg(host, &[IoSlice::new(b"c")], &mut control, SEND_FLAGS)?;
    match sent {
        1 => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::WriteZero, "nothing sent")),
    }
}

// A closed peer is an error, not SIGPIPE; received descriptors are
// close-on-exec from the start where the kernel can do that.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SOCKET_FLAGS: SocketFlags = SocketFlags::CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SOCKET_FLAGS: SocketFlags = SocketFlags::empty();
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: SendFlags = SendFlags::NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: SendFlags = SendFlags::empty();
#[cfg(any(target_os = "linux", target_os = "android"))]
const RECV_FLAGS: RecvFlags = RecvFlags::CMSG_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const RECV_FLAGS: RecvFlags = RecvFlags::empty();

/// One request and its answer at a time on a channel, so concurrent
/// callers never take each other's answers half-way.
static EXCHANGE: Mutex<()> = Mutex::new(());

/// A new connection to the proxy over the sandbox's end of the channel (the
/// bridge's side).
pub fn connect(channel: BorrowedFd<'_>) -> io::Result<UnixStream> {
    let _one_at_a_time = EXCHANGE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    rustix::io::write(channel, b"c")?;
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = rustix::net::recvmsg(
        channel,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RECV_FLAGS,
    )?;
    let fd: Option<OwnedFd> = control.drain().find_map(|message| match message {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    });
    // Where the kernel cannot set it on receipt (macOS), at once after.
    if let Some(fd) = &fd {
        keep_from_children(fd.as_fd())?;
    }
    match (received.bytes, fd) {
        (1, Some(fd)) => Ok(UnixStream::from(fd)),
        (0, _) => Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "the egress proxy is gone",
        )),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the egress proxy answered without a connection",
        )),
    }
}

/// Marks `fd` close-on-exec, so the program the bridge starts does not
/// inherit the channel.
pub fn keep_from_children(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?)
}

/// A descriptor of its own for the channel end `fd` of this process (the
/// bridge that runs on the host, on macOS).
#[cfg(target_os = "macos")]
#[allow(unsafe_code)]
pub(crate) fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: a plan's channel descriptor is open while its sandbox runs
    // (`NetworkMode::Strict`'s contract), and this borrow ends at once.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(rustix::io::fcntl_dupfd_cloexec(borrowed, 0)?)
}

/// Takes the channel's sandbox end that this process inherited as `fd`
/// (the bridge's side), after checking it is an open socket.
#[allow(unsafe_code)]
pub(crate) fn adopt(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::other(format!("{fd} is not a descriptor")));
    }
    // SAFETY: the number names a descriptor this process inherited for
    // exactly this purpose; nothing else in the bridge owns or closes it,
    // and it is only borrowed until the check below passes.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let socket = rustix::fs::fstat(borrowed).is_ok_and(|stat| {
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Socket
    });
    if !socket {
        return Err(io::Error::other(format!(
            "descriptor {fd} is not the egress proxy's channel"
        )));
    }
    // SAFETY: as above; from here the bridge owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn each_request_gets_its_own_connection_to_the_host() {
        let channel = ProxyChannel::new().expect("channel");
        let host = channel.host.try_clone().expect("clone");
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            let mut served = 0;
            while served < 2 {
                let n = take_requests(host.as_fd(), &mut buf).expect("requests");
                for _ in 0..n {
                    let (mut ours, theirs) = UnixStream::pair().expect("pair");
                    hand_over(host.as_fd(), theirs.as_fd()).expect("hand over");
                    served += 1;
                    let mut line = [0u8; 5];
                    ours.read_exact(&mut line).expect("read");
                    ours.write_all(&[line[4]]).expect("answer");
                }
            }
        });
        for n in [b'1', b'2'] {
            let mut stream = connect(channel.sandbox.as_fd()).expect("connected");
            stream
                .write_all(&[b'h', b'e', b'l', b'o', n])
                .expect("write");
            let mut answer = [0u8; 1];
            stream.read_exact(&mut answer).expect("answer");
            assert_eq!(answer[0], n, "each connection reaches the host on its own");
        }
        server.join().expect("server");
    }

    #[test]
    fn a_closed_host_end_is_a_clear_error() {
        let channel = ProxyChannel::new().expect("channel");
        let ProxyChannel { host, sandbox } = channel;
        drop(host);
        let err = connect(sandbox.as_fd()).expect_err("gone");
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::BrokenPipe
            ),
            "{err}"
        );
    }
}
