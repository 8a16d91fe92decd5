//! What is not an attack path: the infrastructure protocols every network
//! runs (DNS, NTP, DHCP, mDNS, Kerberos, LDAP...) and periodic benign
//! services (connectivity checks, certificate revocation, updates).
//!
//! The knowledge is data, `kb/services.json`, each entry with its source;
//! the detection settings add to it (`services:` in a `DetectionConfig`).
//! A flow to an infrastructure service is never scored as beaconing, a
//! strobe, a reconnect storm or a long connection. A periodic pattern to a
//! known periodic service stays visible, at low severity.

use cordon_policy::{FqdnPattern, Hostname};
use serde::Deserialize;

const SERVICES: &str = include_str!("../kb/services.json");

/// An infrastructure service: transports (IP protocol numbers) and ports
/// (any port when none is given).
#[derive(Clone, Debug)]
pub struct Service {
    /// Its name (`DNS`).
    pub name: String,
    /// IP protocol numbers.
    pub protocols: Vec<u8>,
    /// Ports; empty for any.
    pub ports: Vec<u16>,
}

/// A host name rule: a name or `*.suffix` pattern, or `label.*` (a first
/// label under any domain, as `ocsp.*`).
#[derive(Clone, Debug)]
pub enum HostRule {
    /// A name or `*.suffix`.
    Pattern(FqdnPattern),
    /// `label.*`.
    FirstLabel(String),
}

impl HostRule {
    /// Parse a rule.
    ///
    /// # Errors
    /// Why it is not one.
    pub fn parse(text: &str) -> Result<HostRule, String> {
        if let Some(label) = text.strip_suffix(".*") {
            let name = Hostname::parse(label).map_err(|e| e.to_string())?;
            if name.as_str().contains('.') {
                return Err(format!("`{text}`: `label.*` takes one label"));
            }
            return Ok(HostRule::FirstLabel(name.as_str().to_string()));
        }
        FqdnPattern::parse(text)
            .map(HostRule::Pattern)
            .map_err(|e| e.message)
    }

    fn matches(&self, host: &Hostname) -> bool {
        match self {
            HostRule::Pattern(p) => p.matches(host),
            HostRule::FirstLabel(l) => host
                .as_str()
                .split_once('.')
                .is_some_and(|(first, _)| first == l),
        }
    }
}

/// A periodic benign service, by host names.
#[derive(Clone, Debug)]
pub struct Periodic {
    /// Its name.
    pub name: String,
    /// Host rules (`ocsp.*`, `*.pool.ntp.org`).
    pub hosts: Vec<HostRule>,
}

/// The services knowledge.
#[derive(Clone, Debug, Default)]
pub struct Services {
    /// Infrastructure protocols.
    pub infrastructure: Vec<Service>,
    /// Periodic benign services.
    pub periodic: Vec<Periodic>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code, reason = "checked by the knowledge base's tests")]
    kb_version: u32,
    #[allow(dead_code, reason = "documentation in the data")]
    about: String,
    infrastructure: Vec<InfraEntry>,
    periodic: Vec<PeriodicEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InfraEntry {
    name: String,
    transport: Vec<String>,
    ports: Vec<u16>,
    #[allow(dead_code, reason = "documentation in the data")]
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodicEntry {
    name: String,
    hosts: Vec<String>,
    #[allow(dead_code, reason = "documentation in the data")]
    source: String,
}

/// The IP protocol number of a transport name.
pub fn protocol_number(transport: &str) -> Option<u8> {
    match transport {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "igmp" => Some(2),
        "icmpv6" => Some(58),
        "sctp" => Some(132),
        _ => None,
    }
}

impl Services {
    /// The services shipped in the knowledge base.
    ///
    /// # Errors
    /// The embedded file does not parse (a build defect the tests catch).
    pub fn embedded() -> Result<Services, String> {
        let file: File =
            serde_json::from_str(SERVICES).map_err(|e| format!("services.json: {e}"))?;
        let mut s = Services::default();
        for e in file.infrastructure {
            s.add_infrastructure(&e.name, &e.transport, &e.ports)?;
        }
        for e in file.periodic {
            s.add_periodic(&e.name, &e.hosts)?;
        }
        Ok(s)
    }

    /// Add an infrastructure service.
    ///
    /// # Errors
    /// An unknown transport.
    pub fn add_infrastructure(
        &mut self,
        name: &str,
        transports: &[String],
        ports: &[u16],
    ) -> Result<(), String> {
        let protocols = transports
            .iter()
            .map(|t| {
                protocol_number(t).ok_or_else(|| {
                    format!("`{t}` is not a transport (tcp, udp, icmp, icmpv6, igmp, sctp)")
                })
            })
            .collect::<Result<Vec<u8>, String>>()?;
        self.infrastructure.push(Service {
            name: name.to_string(),
            protocols,
            ports: ports.to_vec(),
        });
        Ok(())
    }

    /// Add a periodic service.
    ///
    /// # Errors
    /// A host that is not a name pattern.
    pub fn add_periodic(&mut self, name: &str, hosts: &[String]) -> Result<(), String> {
        let hosts = hosts
            .iter()
            .map(|h| HostRule::parse(h).map_err(|e| format!("`{h}`: {e}")))
            .collect::<Result<Vec<_>, String>>()?;
        self.periodic.push(Periodic {
            name: name.to_string(),
            hosts,
        });
        Ok(())
    }

    /// The infrastructure service on `protocol`/`port`, if one.
    pub fn infrastructure(&self, protocol: u8, port: u16) -> Option<&str> {
        self.infrastructure
            .iter()
            .find(|s| {
                s.protocols.contains(&protocol) && (s.ports.is_empty() || s.ports.contains(&port))
            })
            .map(|s| s.name.as_str())
    }

    /// The periodic benign service `host` belongs to, if one. A pattern
    /// written `label.*` matches that first label under any domain.
    pub fn periodic(&self, host: Option<&str>) -> Option<&str> {
        let host = Hostname::parse(host?).ok()?;
        self.periodic
            .iter()
            .find(|p| p.hosts.iter().any(|rule| rule.matches(&host)))
            .map(|p| p.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_knowledge_loads_and_answers() {
        let s = Services::embedded().unwrap();
        assert_eq!(s.infrastructure(17, 53), Some("DNS"));
        assert_eq!(s.infrastructure(17, 123), Some("NTP"));
        assert_eq!(s.infrastructure(6, 88), Some("Kerberos"));
        assert_eq!(
            s.infrastructure(58, 0),
            Some("IPv6 neighbour discovery and MLD")
        );
        assert_eq!(s.infrastructure(6, 443), None);
        assert_eq!(s.infrastructure(6, 123), None, "NTP is UDP");
        assert!(s.periodic(Some("connectivity-check.ubuntu.com")).is_some());
        assert!(s.periodic(Some("ocsp.digicert.com")).is_some());
        assert!(s.periodic(Some("0.debian.pool.ntp.org")).is_some());
        assert_eq!(s.periodic(Some("c2.example.net")), None);
        assert_eq!(s.periodic(None), None);
    }

    #[test]
    fn additions_are_checked() {
        let mut s = Services::default();
        assert!(
            s.add_infrastructure("x", &["quic".to_string()], &[1])
                .is_err()
        );
        assert!(s.add_periodic("x", &["not a host".to_string()]).is_err());
        s.add_infrastructure("backup agent", &["tcp".to_string()], &[9102])
            .unwrap();
        assert_eq!(s.infrastructure(6, 9102), Some("backup agent"));
    }
}
