//! Large synthetic policies and requests, for benchmarks and scale tests.
//!
//! Deterministic for a seed, so runs compare like with like.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use crate::decision::{Endpoint, Request};
use crate::ports::Protocol;
use cordon_core::hostname::Hostname;

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64().checked_rem(n).unwrap_or(0)
    }
}

/// Shape of a synthetic policy.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Rules.
    pub rules: usize,
    /// CIDR groups (each gets `cidrs / cidr_groups` prefixes).
    pub cidr_groups: usize,
    /// CIDR prefixes in all.
    pub cidrs: usize,
    /// FQDN groups.
    pub fqdn_groups: usize,
    /// FQDN patterns in all.
    pub fqdns: usize,
    /// Seed.
    pub seed: u64,
}

const PORTS: &[&str] = &[
    "tcp/443",
    "tcp/80",
    "tcp/5432",
    "tcp/22",
    "udp/53",
    "tcp/8000-8100",
    "tcp/6379",
    "tcp/3306",
];

fn cidr(rng: &mut SplitMix) -> String {
    let len = 20 + rng.below(13) as u32;
    let addr = (10u32 << 24) | (rng.next_u64() as u32 & 0x00ff_ffff);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    format!("{}/{len}", Ipv4Addr::from(addr & mask))
}

fn fqdn(rng: &mut SplitMix, group: usize, i: usize) -> String {
    if rng.below(4) == 0 {
        format!("\"*.z{i}.g{group}.example\"")
    } else {
        format!("s{i}.g{group}.example")
    }
}

/// The YAML text of a policy of `shape`.
pub fn policy_yaml(shape: &Shape) -> String {
    let mut rng = SplitMix::new(shape.seed);
    let mut y = String::from(
        "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: synthetic}\nspec:\n  groups:\n",
    );
    let per_cidr = shape.cidrs.checked_div(shape.cidr_groups).unwrap_or(0);
    for g in 0..shape.cidr_groups {
        let list: Vec<String> = (0..per_cidr.max(1)).map(|_| cidr(&mut rng)).collect();
        let _ = writeln!(y, "    c{g}: {{cidrs: [{}]}}", list.join(", "));
    }
    let per_fqdn = shape.fqdns.checked_div(shape.fqdn_groups).unwrap_or(0);
    for g in 0..shape.fqdn_groups {
        let list: Vec<String> = (0..per_fqdn.max(1)).map(|i| fqdn(&mut rng, g, i)).collect();
        let _ = writeln!(y, "    f{g}: {{fqdns: [{}]}}", list.join(", "));
    }
    y.push_str("  rules:\n");
    for r in 0..shape.rules {
        let from = format!("c{}", rng.below(shape.cidr_groups.max(1) as u64));
        let to = if rng.below(2) == 0 && shape.fqdn_groups > 0 {
            format!("f{}", rng.below(shape.fqdn_groups as u64))
        } else {
            format!("c{}", rng.below(shape.cidr_groups.max(1) as u64))
        };
        let port = PORTS
            .get(rng.below(PORTS.len() as u64) as usize)
            .copied()
            .unwrap_or("tcp/443");
        let action = if rng.below(10) == 0 { "deny" } else { "allow" };
        let _ = writeln!(
            y,
            "    - {{name: r{r}, from: [{from}], to: [{to}], ports: [{port}], action: {action}}}"
        );
    }
    y
}

/// `n` requests against a policy of `shape`: sources in the CIDR space,
/// destinations half addresses, half hostnames near the patterns.
pub fn requests(shape: &Shape, n: usize) -> Vec<Request> {
    let mut rng = SplitMix::new(shape.seed ^ 0x5eed);
    (0..n)
        .map(|_| {
            let src = Endpoint::ip(IpAddr::V4(Ipv4Addr::from(
                (10u32 << 24) | (rng.next_u64() as u32 & 0x00ff_ffff),
            )));
            let dst = if rng.below(2) == 0 {
                Endpoint::ip(IpAddr::V4(Ipv4Addr::from(
                    (10u32 << 24) | (rng.next_u64() as u32 & 0x00ff_ffff),
                )))
            } else {
                let g = rng.below(shape.fqdn_groups.max(1) as u64);
                let i = rng.below((shape.fqdns / shape.fqdn_groups.max(1)).max(1) as u64);
                let name = if rng.below(2) == 0 {
                    format!("s{i}.g{g}.example")
                } else {
                    format!("api.z{i}.g{g}.example")
                };
                Hostname::parse(&name)
                    .map(Endpoint::host)
                    .unwrap_or_default()
            };
            let (protocol, port) = match rng.below(4) {
                0 => (Protocol::UDP, 53),
                1 => (Protocol::TCP, 443),
                2 => (Protocol::TCP, 8000 + rng.below(200) as u16),
                _ => (Protocol::TCP, 5432),
            };
            Request {
                src,
                dst,
                protocol,
                port,
            }
        })
        .collect()
}
