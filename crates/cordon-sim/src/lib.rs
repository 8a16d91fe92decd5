//! Scenario generator: a small company's traffic — diurnal web load, noisy
//! clients and retries, an API and its database, a notifier that mails
//! through an email vendor, an analytics vendor, DNS, nightly backups to a
//! bucket, OS updates and admin sessions from a bastion — with attacks
//! mixed in and a ground-truth file that says which flows are which.
//!
//! The company's AWS account leaves CloudTrail beside the flows ([`cloud`]):
//! its workloads', people's, CI's and the email vendor's API calls, and in
//! the third-party compromise the attacker's use of the vendor's role.
//!
//! The company is the one in `examples/acme-prod.yaml`. Every benign flow
//! is one that policy allows, so what the policy says about the attack is
//! the interesting part. Sizes, rates, jitter and client populations are
//! drawn from wide distributions: a detector tuned to exact values here
//! would not work on real logs.
//!
//! ```
//! use cordon_sim::{Scenario, Simulation};
//! let sim = Simulation::new(Scenario::ThirdPartyCompromise, 6, 7);
//! let mut flows = 0;
//! let truth = sim.run(&mut |_conn| flows += 1, &mut |_dns| {});
//! assert!(flows > 10_000);
//! assert_eq!(truth.steps.len(), 8);
//! ```

pub mod cloud;
pub mod rng;
pub mod truth;
pub mod write;

mod attack;
mod company;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::rng::Rng;
use crate::truth::{Step, Truth};

/// A value to draw: fixed, log-uniform or uniform in a range.
#[derive(Clone, Copy, Debug)]
pub enum R {
    /// Exactly this.
    Fix(u64),
    /// Log-uniform between the two.
    Log(u64, u64),
    /// Uniform between the two.
    Uni(u64, u64),
}

/// What happened to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Handshake completed, data exchanged.
    Established,
    /// Refused (RST, or a security group's reject).
    Rejected,
    /// Nothing answered.
    Unanswered,
}

/// One generated connection.
#[derive(Clone, Debug)]
pub struct Conn {
    /// Start, ms since the epoch.
    pub start_ms: i64,
    /// Duration in ms.
    pub duration_ms: i64,
    /// Initiator.
    pub src: IpAddr,
    /// Initiator's port.
    pub src_port: u16,
    /// Responder.
    pub dst: IpAddr,
    /// Responder's port.
    pub dst_port: u16,
    /// 6 or 17.
    pub protocol: u8,
    /// Bytes from the initiator.
    pub bytes_out: u64,
    /// Bytes to the initiator.
    pub bytes_in: u64,
    /// Packets from the initiator.
    pub packets_out: u64,
    /// Packets to the initiator.
    pub packets_in: u64,
    /// What happened.
    pub outcome: Outcome,
    /// The ground-truth step this connection belongs to, if an attack.
    pub step: Option<usize>,
}

impl Conn {
    /// The connection as one two-way flow record (as Zeek would log it).
    pub fn flow(&self) -> cordon_flow::Flow {
        let mut f = cordon_flow::Flow::new(
            cordon_flow::FlowSource::Zeek,
            self.src,
            self.dst,
            self.protocol,
        );
        f.start_ms = self.start_ms;
        f.end_ms = self.start_ms + self.duration_ms;
        f.src_port = self.src_port;
        f.dst_port = self.dst_port;
        let answered = self.outcome == Outcome::Established;
        f.bytes_out = if answered { self.bytes_out } else { 0 };
        f.bytes_in = if answered { self.bytes_in } else { 0 };
        f.packets_out = self.packets_out;
        f.packets_in = if answered {
            self.packets_in
        } else {
            u64::from(self.outcome == Outcome::Rejected)
        };
        f.observed = Some(cordon_flow::Observed::Accepted);
        f.attr(
            "conn_state",
            match self.outcome {
                Outcome::Established => "SF",
                Outcome::Rejected => "REJ",
                Outcome::Unanswered => "S0",
            },
        );
        f
    }
}

/// One DNS answer the resolver gave.
#[derive(Clone, Debug)]
pub struct DnsAnswer {
    /// When.
    pub ts_ms: i64,
    /// Who asked.
    pub client: IpAddr,
    /// Client port.
    pub client_port: u16,
    /// The resolver.
    pub resolver: IpAddr,
    /// Name asked for.
    pub query: String,
    /// Addresses answered.
    pub answers: Vec<IpAddr>,
    /// TTL in seconds.
    pub ttl: u32,
}

/// The scenarios `cordon simulate` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// The incident: access through the email vendor's trusted path,
    /// discovery, lateral movement to the user database, a C2 beacon, and
    /// staged exfiltration to a cloud storage account.
    ThirdPartyCompromise,
    /// Only the company's own traffic.
    Benign,
    /// The vendor access step alone.
    VendorAccess,
    /// The discovery step alone.
    Discovery,
    /// The lateral movement step alone.
    LateralMovement,
    /// The C2 beacon alone.
    CommandAndControl,
    /// The exfiltration alone.
    Exfiltration,
    /// Password guessing against SSH from the internet.
    BruteForce,
}

impl Scenario {
    /// Every scenario, as named on the command line.
    pub const ALL: [(&'static str, Scenario); 8] = [
        ("third-party-compromise", Scenario::ThirdPartyCompromise),
        ("benign", Scenario::Benign),
        ("vendor-access", Scenario::VendorAccess),
        ("discovery", Scenario::Discovery),
        ("lateral-movement", Scenario::LateralMovement),
        ("command-and-control", Scenario::CommandAndControl),
        ("exfiltration", Scenario::Exfiltration),
        ("brute-force", Scenario::BruteForce),
    ];

    /// The scenario named `name`.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    /// The scenario's name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("?", |(n, _)| n)
    }
}

/// Hosts of the company and the parties it talks to.
pub(crate) mod hosts {
    use std::net::{IpAddr, Ipv4Addr};

    pub const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    pub const WEB: [IpAddr; 2] = [v4(10, 0, 1, 10), v4(10, 0, 1, 11)];
    pub const API: [IpAddr; 2] = [v4(10, 0, 3, 10), v4(10, 0, 3, 11)];
    pub const DB: IpAddr = v4(10, 0, 2, 10);
    pub const NOTIFIER: IpAddr = v4(10, 0, 4, 10);
    pub const BACKUP: IpAddr = v4(10, 0, 5, 10);
    pub const BASTION: IpAddr = v4(10, 0, 9, 10);
    pub const RESOLVER: IpAddr = v4(10, 0, 0, 2);
    pub const MAILER_SMTP: IpAddr = v4(198, 51, 100, 25);
    pub const MAILER_API: IpAddr = v4(198, 51, 100, 40);
    pub const ANALYTICS: [IpAddr; 3] = [
        v4(34, 120, 55, 10),
        v4(34, 120, 55, 11),
        v4(34, 117, 9, 200),
    ];
    pub const DEBIAN: [IpAddr; 4] = [
        v4(151, 101, 2, 132),
        v4(151, 101, 66, 132),
        v4(151, 101, 130, 132),
        v4(151, 101, 194, 132),
    ];
    pub const BUCKET: [IpAddr; 3] = [v4(52, 218, 32, 10), v4(52, 218, 36, 75), v4(52, 92, 17, 3)];
}

/// A run of the generator.
pub struct Simulation {
    /// What to generate.
    pub scenario: Scenario,
    /// Hours of traffic.
    pub hours: u32,
    /// Seed: the same seed gives the same traffic.
    pub seed: u64,
    /// Start of the first hour, ms since the epoch (midnight UTC).
    pub start_ms: i64,
}

/// Everything a generator writes into while it runs.
pub(crate) struct World<'a> {
    pub rng: Rng,
    pub out: &'a mut dyn FnMut(&Conn),
    pub dns_out: &'a mut dyn FnMut(&DnsAnswer),
    /// (client, name) → cache expiry, so names are resolved as a real
    /// client would: again only after the TTL.
    pub cache: HashMap<(IpAddr, String), (i64, i64)>,
    pub hour: Vec<Conn>,
    pub dns_hour: Vec<DnsAnswer>,
    pub clients: Vec<IpAddr>,
}

impl World<'_> {
    /// A fresh ephemeral port.
    pub fn port(&mut self) -> u16 {
        self.rng.range(32_768, 60_999) as u16
    }

    /// Queue a connection.
    pub fn conn(&mut self, c: Conn) {
        self.hour.push(c);
    }

    /// Resolve `name` for `client` at `t` when its cache has expired,
    /// emitting the query's flow and answer; the address to connect to.
    pub fn resolve(&mut self, client: IpAddr, name: &str, addrs: &[IpAddr], t: i64) -> IpAddr {
        let fallback = hosts::v4(192, 0, 2, 1);
        let key = (client, name.to_string());
        let fresh = self
            .cache
            .get(&key)
            .is_some_and(|(asked, exp)| *asked <= t && t < *exp);
        let chosen = *self.rng.pick(addrs).unwrap_or(&fallback);
        if fresh {
            return chosen;
        }
        let ttl = *self.rng.pick(&[60u32, 120, 300, 300, 600]).unwrap_or(&300);
        let q = t - self.rng.range(5, 60) as i64;
        // The client keeps the answer for its TTL from when it came.
        self.cache.insert(key, (q, q + i64::from(ttl) * 1000));
        let port = self.port();
        self.dns_hour.push(DnsAnswer {
            ts_ms: q,
            client,
            client_port: port,
            resolver: hosts::RESOLVER,
            query: name.to_string(),
            answers: addrs.to_vec(),
            ttl,
        });
        let bytes_out = 40 + name.len() as u64;
        let duration_ms = self.rng.range(1, 40) as i64;
        self.conn(Conn {
            start_ms: q,
            duration_ms,
            src: client,
            src_port: port,
            dst: hosts::RESOLVER,
            dst_port: 53,
            protocol: 17,
            bytes_out,
            bytes_in: bytes_out + 16 * addrs.len() as u64 + 20,
            packets_out: 1,
            packets_in: 1,
            outcome: Outcome::Established,
            step: None,
        });
        chosen
    }

    /// Draw a value.
    pub fn draw(&mut self, r: R) -> u64 {
        match r {
            R::Fix(v) => v,
            R::Log(lo, hi) => self.rng.log_range(lo, hi),
            R::Uni(lo, hi) => self.rng.range(lo, hi),
        }
    }

    /// A TCP connection with packet counts derived from its sizes.
    #[allow(
        clippy::too_many_arguments,
        reason = "one field per argument, all named at the call"
    )]
    pub fn tcp(
        &mut self,
        t: i64,
        duration_ms: R,
        src: IpAddr,
        dst: IpAddr,
        dst_port: u16,
        bytes_out: R,
        bytes_in: R,
        step: Option<usize>,
    ) {
        let duration_ms = self.draw(duration_ms) as i64;
        let bytes_out = self.draw(bytes_out);
        let bytes_in = self.draw(bytes_in);
        let src_port = self.port();
        let packets = |b: u64| 2 + b / 1200;
        self.conn(Conn {
            start_ms: t,
            duration_ms,
            src,
            src_port,
            dst,
            dst_port,
            protocol: 6,
            bytes_out: bytes_out + 120,
            bytes_in: bytes_in + 80,
            packets_out: packets(bytes_out),
            packets_in: packets(bytes_in),
            outcome: Outcome::Established,
            step,
        });
    }

    /// A TCP attempt that nobody answered (or that was refused).
    pub fn probe(
        &mut self,
        t: i64,
        src: IpAddr,
        dst: IpAddr,
        dst_port: u16,
        outcome: Outcome,
        step: Option<usize>,
    ) {
        let src_port = self.port();
        let refused = outcome == Outcome::Rejected;
        self.conn(Conn {
            start_ms: t,
            duration_ms: if refused { 1 } else { 3000 },
            src,
            src_port,
            dst,
            dst_port,
            protocol: 6,
            bytes_out: if refused { 60 } else { 120 },
            bytes_in: if refused { 40 } else { 0 },
            packets_out: if refused { 1 } else { 2 },
            packets_in: u64::from(refused),
            outcome,
            step,
        });
    }
}

/// Whether `ip` is a public unicast address (not private, loopback,
/// link-local, CGNAT, documentation, benchmarking, multicast or reserved).
fn public(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_documentation()
        || ip.is_broadcast()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 198 && (18..20).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 192 && o[1] == 88 && o[2] == 99))
}

/// How busy the company is at `hour_of_day` (0..24, UTC = local here):
/// quiet at night, a peak mid-afternoon.
pub(crate) fn diurnal(hour_of_day: f64) -> f64 {
    let x = (hour_of_day - 14.0) / 24.0 * std::f64::consts::TAU;
    0.15 + 0.85 * (0.5 + 0.5 * x.cos()).powf(1.5)
}

impl Simulation {
    /// A simulation of `hours` of `scenario` with `seed`, starting at
    /// 2026-02-03 00:00 UTC (the week of the incident).
    pub fn new(scenario: Scenario, hours: u32, seed: u64) -> Simulation {
        Simulation {
            scenario,
            hours: hours.max(1),
            seed,
            start_ms: 1_770_076_800_000,
        }
    }

    /// Generate, calling `out` for each connection and `dns` for each DNS
    /// answer, in time order hour by hour. Returns the ground truth (with
    /// the cloud steps, whose CloudTrail [`Simulation::run_with_cloud`]
    /// writes).
    pub fn run(&self, out: &mut dyn FnMut(&Conn), dns: &mut dyn FnMut(&DnsAnswer)) -> Truth {
        self.run_with_cloud(out, dns, None)
    }

    /// [`Simulation::run`], also calling `cloud` with each CloudTrail
    /// record of the company's AWS account (hour by hour, in time order
    /// within an hour).
    pub fn run_with_cloud(
        &self,
        out: &mut dyn FnMut(&Conn),
        dns: &mut dyn FnMut(&DnsAnswer),
        mut cloud: Option<&mut dyn FnMut(&serde_json::Value)>,
    ) -> Truth {
        let mut world = World {
            rng: Rng::new(self.seed),
            out,
            dns_out: dns,
            cache: HashMap::new(),
            hour: Vec::new(),
            dns_hour: Vec::new(),
            clients: Vec::new(),
        };
        // A client population with heavy hitters (noisy clients) and a
        // long tail, different for every seed.
        let n_clients = world.rng.range(3_000, 12_000) as usize;
        world.clients = (0..n_clients)
            .map(|_| {
                loop {
                    let ip = Ipv4Addr::from(world.rng.u64() as u32);
                    if public(ip) {
                        break IpAddr::V4(ip);
                    }
                }
            })
            .collect();
        let plan = attack::plan(self, &mut world.rng);
        let mut company = company::Company::new(&mut world.rng);
        let mut counts = vec![0u64; plan.steps.len()];
        // The cloud half: its own draws, so the flows stay the same.
        let mut trail = cloud::Trail::new(self.seed);
        let mut cloud_steps = Vec::new();
        if self.scenario == Scenario::ThirdPartyCompromise {
            let attacker = hosts::v4(185, 159, 82, 20 + (self.seed % 200) as u8);
            let bucket = plan.export_bucket.as_deref().unwrap_or("attacker-drop");
            cloud_steps = trail.attack(plan.at, attacker, bucket);
        }
        let mut attack_records = std::mem::take(&mut trail.records);
        attack_records.sort_by_key(|(t, _)| *t);
        let mut attack_records = attack_records.into_iter().peekable();
        for h in 0..self.hours {
            let hour_start = self.start_ms + i64::from(h) * 3_600_000;
            company.hour(&mut world, hour_start);
            attack::hour(&plan, &mut world, hour_start);
            world.hour.sort_by_key(|c| c.start_ms);
            world.dns_hour.sort_by_key(|d| d.ts_ms);
            for c in world.hour.drain(..) {
                if let Some(step) = c.step.and_then(|s| counts.get_mut(s)) {
                    *step += 1;
                }
                (world.out)(&c);
            }
            for d in world.dns_hour.drain(..) {
                (world.dns_out)(&d);
            }
            if let Some(cloud) = cloud.as_deref_mut() {
                let hod = (hour_start.rem_euclid(86_400_000) / 3_600_000) as f64;
                trail.hour(hour_start, diurnal(hod + 0.5));
                while let Some((t, r)) =
                    attack_records.next_if(|(t, _)| *t < hour_start + 3_600_000)
                {
                    trail.records.push((t, r));
                }
                trail.records.sort_by_key(|(t, _)| *t);
                for (_, r) in trail.records.drain(..) {
                    cloud(&r);
                }
            }
            // Forget expired cache entries now and then.
            if h % 6 == 5 {
                world.cache.retain(|_, (_, exp)| *exp > hour_start);
            }
        }
        Truth {
            scenario: self.scenario.name().to_string(),
            seed: self.seed,
            hours: self.hours,
            start_ms: self.start_ms,
            end_ms: self.start_ms + i64::from(self.hours) * 3_600_000,
            steps: plan
                .steps
                .iter()
                .zip(counts)
                .map(|(s, flows)| Step { flows, ..s.clone() })
                .chain(cloud_steps)
                .collect(),
        }
    }
}
