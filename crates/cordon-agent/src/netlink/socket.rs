//! A netfilter netlink socket: send a buffer of messages, read answers.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, sockopt};

/// How long the kernel may take to answer a batch before the agent gives up.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Room for the acknowledgements of a batch of tens of thousands of
/// messages (each is accounted at about a kilobyte).
const RECEIVE_BUFFER: usize = 64 << 20;

/// An open `NETLINK_NETFILTER` socket.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Socket {
    /// Open and bind a socket.
    ///
    /// # Errors
    /// The socket cannot be made (no netlink, or a sandbox refusing it).
    pub fn open() -> io::Result<Socket> {
        let fd = rustix::net::socket(
            AddressFamily::NETLINK,
            SocketType::RAW,
            Some(netlink::NETFILTER),
        )?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        // Forcing the size needs CAP_NET_ADMIN, which applying needs too;
        // without it, the ordinary limit is the best there is.
        if sockopt::set_socket_recv_buffer_size_force(&fd, RECEIVE_BUFFER).is_err() {
            let _ = sockopt::set_socket_recv_buffer_size(&fd, RECEIVE_BUFFER);
        }
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(ANSWER_TIMEOUT))?;
        Ok(Socket {
            fd,
            buf: vec![0; 1 << 20],
        })
    }

    /// How long [`Socket::receive`] waits.
    ///
    /// # Errors
    /// The socket refused the option.
    pub fn set_timeout(&self, wait: Duration) -> io::Result<()> {
        sockopt::set_socket_timeout(&self.fd, sockopt::Timeout::Recv, Some(wait))?;
        Ok(())
    }

    /// Send `bytes` as one datagram (a batch must arrive whole).
    ///
    /// # Errors
    /// The kernel refused the datagram.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let want = bytes.len() + 4096;
        if sockopt::socket_send_buffer_size(&self.fd)? < want
            && sockopt::set_socket_send_buffer_size_force(&self.fd, want).is_err()
        {
            sockopt::set_socket_send_buffer_size(&self.fd, want)?;
        }
        let sent = rustix::net::sendto(
            &self.fd,
            bytes,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        if sent != bytes.len() {
            return Err(io::Error::other(format!(
                "netlink sent {sent} of {} bytes",
                bytes.len()
            )));
        }
        Ok(())
    }

    /// Receive one datagram from the kernel; datagrams from other sockets
    /// (only a process with CAP_NET_ADMIN could send them) are dropped.
    ///
    /// # Errors
    /// A timeout, or the socket failing (`ENOBUFS` when answers were lost).
    pub fn receive(&mut self) -> io::Result<&[u8]> {
        loop {
            // With TRUNC the kernel tells the datagram's whole length.
            let (n, full, from) =
                rustix::net::recvfrom(&self.fd, &mut self.buf[..], RecvFlags::TRUNC)?;
            let kernel = from
                .and_then(|a| SocketAddrNetlink::try_from(a).ok())
                .is_some_and(|a| a.pid() == 0);
            if !kernel {
                continue;
            }
            if full > n {
                return Err(io::Error::other(format!(
                    "a netlink answer of {full} bytes did not fit in {n}"
                )));
            }
            return Ok(self.buf.get(..n).unwrap_or_default());
        }
    }
}
