//! Addresses: the one canonical form, and the ranges behind the built-in
//! groups `internet` and `private`.

use std::net::IpAddr;

use ipnet::IpNet;

/// IPv4-mapped IPv6 addresses are their IPv4 address everywhere in Cordon.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Ranges that are not `internet`: private, loopback, link-local, CGNAT,
/// multicast, documentation, benchmarking and reserved (RFC 6890 and the
/// IANA special-purpose registries). IPv6 `internet` is limited to global
/// unicast (2000::/3) less its special ranges.
pub const NOT_INTERNET_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// Global unicast IPv6, the only IPv6 space that can be `internet`.
pub const GLOBAL_UNICAST_V6: &str = "2000::/3";

/// Special ranges inside 2000::/3 that are not `internet`.
pub const NOT_INTERNET_V6_IN_GLOBAL: &[&str] =
    &["2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20"];

/// Ranges in the built-in group `private`.
pub const PRIVATE: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
];

/// Parse a constant list (the lists above are checked by tests).
pub fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().filter_map(|s| s.parse().ok()).collect()
}

/// The lists above, parsed once: the checks below run per flow when the
/// store labels flows without a policy.
struct Parsed {
    not_internet_v4: Vec<IpNet>,
    global_v6: Option<IpNet>,
    not_internet_v6: Vec<IpNet>,
    private: Vec<IpNet>,
}

fn parsed() -> &'static Parsed {
    static PARSED: std::sync::OnceLock<Parsed> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| Parsed {
        not_internet_v4: nets(NOT_INTERNET_V4),
        global_v6: GLOBAL_UNICAST_V6.parse().ok(),
        not_internet_v6: nets(NOT_INTERNET_V6_IN_GLOBAL),
        private: nets(PRIVATE),
    })
}

/// Whether `ip` is in the built-in group `internet`.
pub fn is_internet(ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    let p = parsed();
    match ip {
        IpAddr::V4(_) => !p.not_internet_v4.iter().any(|n| n.contains(&ip)),
        IpAddr::V6(_) => {
            p.global_v6.is_some_and(|g| g.contains(&ip))
                && !p.not_internet_v6.iter().any(|n| n.contains(&ip))
        }
    }
}

/// Whether `ip` is an address no conversation can be held with across
/// networks: multicast, the limited broadcast, link-local and unspecified
/// addresses. DHCP, mDNS, SSDP, LLMNR and IPv6 neighbour and listener
/// discovery live there; such an address is never a command-and-control
/// server, an exfiltration target or the far end of a beacon.
pub fn is_local_only(ip: IpAddr) -> bool {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => {
            v4.is_multicast() || v4.is_broadcast() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unicast_link_local() || v6.is_unspecified(),
    }
}

/// Whether `ip` is in the built-in group `private`.
pub fn is_private(ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    parsed().private.iter().any(|n| n.contains(&ip))
}
