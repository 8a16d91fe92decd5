//! Names and addresses from a hosts(5) file: how the agent and the gateway
//! resolve names in tests and on air-gapped sites.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};

/// A line of a hosts file that does not start with an address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: `{word}` is not an address")]
pub struct HostsError {
    /// The line, from 1.
    pub line: usize,
    /// What stood where the address should be.
    pub word: String,
}

/// Names and their addresses from a hosts(5) file.
#[derive(Clone, Debug, Default)]
pub struct Hosts(BTreeMap<String, Vec<IpAddr>>);

impl Hosts {
    /// Read hosts(5) text: an address, then names; `#` starts a comment.
    /// Lines that do not start with an address are reported by number.
    ///
    /// # Errors
    /// The first bad line.
    pub fn parse(text: &str) -> Result<Hosts, HostsError> {
        let mut map: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(first) = words.next() else { continue };
            let ip: IpAddr = first.parse().map_err(|_| HostsError {
                line: i + 1,
                word: first.to_string(),
            })?;
            for name in words {
                let name = crate::Hostname::parse(name)
                    .map(|h| h.as_str().to_string())
                    .unwrap_or_else(|_| name.trim_end_matches('.').to_ascii_lowercase());
                let list = map.entry(name).or_default();
                if !list.contains(&ip) {
                    list.push(ip);
                }
            }
        }
        Ok(Hosts(map))
    }

    /// The addresses of `name`.
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        self.0
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }
}

/// The addresses the system resolver gives for `name` now, sorted.
pub fn system(name: &str) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip()).collect())
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}
