//! Name resolution for FQDN groups: a hosts(5) file, or the system.

use std::net::{IpAddr, ToSocketAddrs};

pub use cordon_policy::hosts::Hosts;

/// The addresses the system resolver gives for `name` now.
pub fn system(name: &str) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip()).collect())
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}
