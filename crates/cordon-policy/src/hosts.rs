//! Names and addresses from a hosts(5) file: how the agent and the gateway
//! resolve names in tests and on air-gapped sites.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Names and their addresses from a hosts(5) file.
#[derive(Clone, Debug, Default)]
pub struct Hosts(BTreeMap<String, Vec<IpAddr>>);

impl Hosts {
    /// Read hosts(5) text: an address, then names; `#` starts a comment.
    /// Lines that do not start with an address are reported by number.
    ///
    /// # Errors
    /// The first bad line, as `line N: why`.
    pub fn parse(text: &str) -> Result<Hosts, String> {
        let mut map: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(first) = words.next() else { continue };
            let ip: IpAddr = first
                .parse()
                .map_err(|_| format!("line {}: `{first}` is not an address", i + 1))?;
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
