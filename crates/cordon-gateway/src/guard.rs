//! The SSRF guard: which resolved addresses the gateway refuses to dial
//! unless a rule names them.
//!
//! Everything that is not public unicast is refused: loopback, private,
//! link-local (cloud metadata at 169.254.169.254 and fd00:ec2::254 among
//! them), CGNAT, multicast, broadcast, unspecified, reserved and
//! documentation ranges, and IPv6 forms that embed an IPv4 address the
//! client could not reach directly (IPv4-mapped, NAT64, 6to4, Teredo). The
//! ranges are the ones behind the policy's built-in `internet` group, so
//! the guard and the policy agree on what "public" means.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cordon_core::ip as special;

/// Why `ip` may not be dialled without an explicit rule, or `None` when it
/// is public unicast.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let kind = if ip.is_unspecified() || o[0] == 0 {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if o == [169, 254, 169, 254] {
        "cloud metadata"
    } else if ip.is_link_local() {
        "link-local"
    } else if ip.is_private() {
        "private"
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        "carrier-grade NAT"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_broadcast() {
        "broadcast"
    } else if ip.is_documentation() {
        "documentation"
    } else if special::is_internet(IpAddr::V4(ip)) {
        return None;
    } else {
        "reserved"
    };
    Some(kind)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4).or(Some("IPv4-mapped"));
    }
    let kind = if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix: as public as the address it embeds.
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return forbidden_v4(v4).map(|_| "NAT64 embedding a non-public IPv4 address");
    } else if s[0] == 0x2002 {
        "6to4 (embeds an IPv4 address)"
    } else if s[0] == 0x2001 && s[1] == 0 {
        "Teredo (embeds an IPv4 address)"
    } else if s[..4] == [0xfd00, 0x0ec2, 0, 0] {
        "cloud metadata"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link-local"
    } else if (s[0] & 0xffc0) == 0xfec0 {
        "site-local"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "unique local"
    } else if (s[0] & 0xff00) == 0xff00 {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation"
    } else if special::is_internet(IpAddr::V6(ip)) {
        return None;
    } else {
        "reserved"
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::forbidden;

    #[test]
    fn public_and_special_addresses() {
        for public in ["93.184.216.34", "2606:2800:220:1::1", "64:ff9b::5db8:d822"] {
            assert_eq!(forbidden(public.parse().unwrap()), None, "{public}");
        }
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("0.1.2.3", "unspecified"),
            ("169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("100.100.1.1", "carrier-grade NAT"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("198.18.0.1", "reserved"),
            ("192.0.0.8", "reserved"),
            ("::ffff:10.0.0.1", "private"),
            (
                "64:ff9b::a00:1",
                "NAT64 embedding a non-public IPv4 address",
            ),
            ("2002:7f00:1::", "6to4 (embeds an IPv4 address)"),
            ("2001:0:4136:e378::1", "Teredo (embeds an IPv4 address)"),
            ("fec0::1", "site-local"),
            ("2001:db8::1", "documentation"),
            ("ff02::1", "multicast"),
        ] {
            assert_eq!(forbidden(ip.parse().unwrap()), Some(kind), "{ip}");
        }
    }
}
