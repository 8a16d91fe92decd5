//! Per-detector settings (thresholds, windows, allowlists) with sane
//! defaults, optionally read from a YAML file:
//!
//! ```yaml
//! apiVersion: cordon/v1
//! kind: DetectionConfig
//! detectors:
//!   beaconing: {min_connections: 30, threshold: 0.85, allow: ["*.metrics.example"]}
//!   exfiltration: {min_bytes: 200MiB}
//!   brute-force: {enabled: false}
//! ```

use cordon_core::units::{ByteSize, Window};
use cordon_policy::{FqdnPattern, Hostname};
use cordon_yaml::{Diagnostics, Node};
use ipnet::IpNet;
use std::net::IpAddr;

/// Addresses and names a detector leaves alone.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    nets: Vec<IpNet>,
    names: Vec<FqdnPattern>,
}

impl Allowlist {
    /// Whether `ip` or `host` is allowed.
    pub fn contains(&self, ip: IpAddr, host: Option<&str>) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
            || host.is_some_and(|h| {
                Hostname::parse(h).is_ok_and(|h| self.names.iter().any(|p| p.matches(&h)))
            })
    }
}

/// Settings every detector has.
#[derive(Clone, Debug)]
pub struct Common {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Endpoints it ignores.
    pub allow: Allowlist,
    /// Most keys (pairs, hosts) it tracks at once.
    pub max_state: usize,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            enabled: true,
            allow: Allowlist::default(),
            max_state: 65_536,
        }
    }
}

/// One numeric setting, by kind of value.
pub enum Param<'a> {
    /// A count.
    Count(&'a mut u64),
    /// A fraction or score.
    Ratio(&'a mut f64),
    /// A size in bytes (`100MiB`).
    Bytes(&'a mut u64),
    /// A duration in ms (`10m`, `1h`).
    Duration(&'a mut i64),
}

/// Settings of every detector.
#[derive(Clone, Debug)]
pub struct Config {
    /// What is not an attack path: infrastructure protocols and periodic
    /// benign services (the knowledge base's, plus the settings' own).
    pub services: std::sync::Arc<crate::services::Services>,
    /// Beaconing.
    pub beaconing: Beaconing,
    /// Long connections.
    pub long_connections: LongConnections,
    /// Exfiltration.
    pub exfiltration: Exfiltration,
    /// Vendor drift and shadow vendors.
    pub vendors: Vendors,
    /// Lateral movement.
    pub lateral: Lateral,
    /// Service discovery.
    pub scan: Scan,
    /// Brute force.
    pub brute_force: BruteForce,
    /// Threat intelligence.
    pub intel: Common,
    /// Policy violations.
    pub violations: Violations,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // The shipped file is checked by the tests; were it ever
            // unreadable, detection would run without it rather than not.
            services: std::sync::Arc::new(
                crate::services::Services::embedded().unwrap_or_default(),
            ),
            beaconing: Beaconing::default(),
            long_connections: LongConnections::default(),
            exfiltration: Exfiltration::default(),
            vendors: Vendors::default(),
            lateral: Lateral::default(),
            scan: Scan::default(),
            brute_force: BruteForce::default(),
            intel: Common::default(),
            violations: Violations::default(),
        }
    }
}

macro_rules! settings {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty = $default:expr, $kind:ident;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            /// Settings every detector has.
            pub common: Common,
            $($(#[$fdoc])* pub $field: $ty,)*
        }
        impl Default for $name {
            fn default() -> Self {
                $name { common: Common::default(), $($field: $default,)* }
            }
        }
        impl $name {
            fn decode(&mut self, node: &Node, name: &str, diags: &mut Diagnostics) {
                let params = vec![$((stringify!($field), Param::$kind(&mut self.$field)),)*];
                decode_settings(node, name, &mut self.common, params, diags);
            }
        }
    };
}

const MIB: u64 = 1 << 20;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

settings!(
    /// Beaconing: regular connections from one source to one destination.
    Beaconing {
        /// Connections needed before a pair is scored.
        min_connections: u64 = 10, Count;
        /// Score (0..1) at or above which a pair is reported.
        threshold: f64 = 0.8, Ratio;
        /// Most connection times kept per pair.
        max_samples: u64 = 256, Count;
        /// Least time between first and last connection.
        min_span: i64 = 5 * MINUTE, Duration;
    }
);

settings!(
    /// Long connections to external destinations.
    LongConnections {
        /// Duration at or above which a connection is reported.
        min_duration: i64 = HOUR, Duration;
        /// Gap between records of one connection (flow logs split them).
        max_gap: i64 = 15 * MINUTE, Duration;
    }
);

settings!(
    /// Exfiltration: large outbound transfers against the source's baseline.
    Exfiltration {
        /// Least bytes out in one hour to one destination.
        min_bytes: u64 = 100 * MIB, Bytes;
        /// How many MADs above the source's hourly median.
        mad_factor: f64 = 10.0, Ratio;
        /// Out/in ratio at or above which a transfer is upload-heavy.
        upload_ratio: f64 = 20.0, Ratio;
        /// Least bytes in one hour to a first-seen raw address on a
        /// non-web port (judged without a baseline).
        min_bytes_raw: u64 = 20 * MIB, Bytes;
        /// How long the network must have been watched before an hour is
        /// judged against a source's baseline: before a whole day, a
        /// nightly job has not run yet and "usual" means nothing. (The
        /// raw-address rule applies from the first flow.)
        learn: i64 = 24 * HOUR, Duration;
    }
);

settings!(
    /// Vendor drift and traffic to undeclared third parties.
    Vendors {
        /// Time spent learning a vendor's baseline before drift is reported.
        learn: i64 = 6 * HOUR, Duration;
        /// How many MADs above the vendor's hourly median.
        mad_factor: f64 = 10.0, Ratio;
        /// Least bytes in one hour for a volume finding.
        min_bytes: u64 = 10 * MIB, Bytes;
        /// Distinct hours with traffic before an undeclared party is reported.
        shadow_hours: u64 = 6, Count;
        /// Least bytes out to an undeclared party.
        shadow_bytes: u64 = MIB, Bytes;
        /// Without a policy: distinct hours of answered traffic between an
        /// internal host and an external network before the network is a
        /// party the host trades with (an undeclared third party).
        relation_hours: u64 = 3, Count;
    }
);

settings!(
    /// Lateral movement over admin protocols.
    Lateral {
        /// Without a policy: time learning which admin pairs are normal (a
        /// day: admin work follows the working day, so a shorter watch
        /// misses the routine sessions of the first morning).
        learn: i64 = 24 * HOUR, Duration;
        /// Least bytes each way (each way the record shows) for a
        /// session: a scan's handshake and banner stay below it.
        min_bytes: u64 = 1000, Bytes;
    }
);

settings!(
    /// Service discovery: horizontal and vertical scans.
    Scan {
        /// Window the counts are taken over.
        window: i64 = 10 * MINUTE, Duration;
        /// Distinct hosts on one port.
        min_hosts: u64 = 20, Count;
        /// Distinct ports on one host.
        min_ports: u64 = 15, Count;
    }
);

settings!(
    /// Brute force against authentication services.
    BruteForce {
        /// Window the counts are taken over.
        window: i64 = 10 * MINUTE, Duration;
        /// Failed or short connections to one service.
        min_attempts: u64 = 30, Count;
        /// Hosts tried by one source on one auth port (spraying).
        min_spray_hosts: u64 = 10, Count;
        /// Failed interactive logins (SSH, Telnet, FTP, RDP, VNC) within
        /// `burst_window` that are a guessing burst.
        min_burst: u64 = 10, Count;
        /// The window of a guessing burst.
        burst_window: i64 = 2 * MINUTE, Duration;
    }
);

settings!(
    /// Denied and would-deny flows.
    Violations {}
);

/// Detector names as written in the config file.
pub const DETECTORS: [&str; 9] = [
    "beaconing",
    "long-connections",
    "exfiltration",
    "vendors",
    "lateral-movement",
    "service-discovery",
    "brute-force",
    "threat-intel",
    "policy-violations",
];

/// An invalid detection config: every problem, sorted by position.
#[derive(Clone, Debug)]
pub struct ConfigError {
    /// The problems.
    pub diagnostics: Vec<cordon_yaml::Diagnostic>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Read a config file; every problem is reported with its location.
    ///
    /// # Errors
    /// Every problem found, with its position.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let doc = cordon_yaml::parse(file, text).map_err(|d| ConfigError {
            diagnostics: vec![d],
        })?;
        let mut diags = Diagnostics::new(file);
        let mut config = Config::default();
        if let Some(mut top) = doc.root.fields(&mut diags, "detection config") {
            if let Some(v) = top.require(&mut diags, "apiVersion")
                && v.as_str() != Some("cordon/v1")
            {
                diags.error(v.pos, "`apiVersion` must be `cordon/v1`");
            }
            if let Some(v) = top.require(&mut diags, "kind")
                && v.as_str() != Some("DetectionConfig")
            {
                diags.error(v.pos, "`kind` must be `DetectionConfig`");
            }
            if let Some(d) = top.get("detectors")
                && let Some(mut detectors) = d.fields(&mut diags, "detectors")
            {
                for name in DETECTORS {
                    if let Some(node) = detectors.get(name) {
                        config.decode_one(name, node, &mut diags);
                    }
                }
                detectors.finish(&mut diags, &DETECTORS);
            }
            if let Some(node) = top.get("services") {
                let mut services = (*config.services).clone();
                decode_services(node, &mut services, &mut diags);
                config.services = std::sync::Arc::new(services);
            }
            top.finish(&mut diags, &["apiVersion", "kind", "detectors", "services"]);
        }
        if diags.has_errors() {
            return Err(ConfigError {
                diagnostics: diags.into_vec(),
            });
        }
        Ok(config)
    }

    fn decode_one(&mut self, name: &str, node: &Node, diags: &mut Diagnostics) {
        match name {
            "beaconing" => self.beaconing.decode(node, name, diags),
            "long-connections" => self.long_connections.decode(node, name, diags),
            "exfiltration" => self.exfiltration.decode(node, name, diags),
            "vendors" => self.vendors.decode(node, name, diags),
            "lateral-movement" => self.lateral.decode(node, name, diags),
            "service-discovery" => self.scan.decode(node, name, diags),
            "brute-force" => self.brute_force.decode(node, name, diags),
            "policy-violations" => self.violations.decode(node, name, diags),
            _ => decode_settings(node, name, &mut self.intel, Vec::new(), diags),
        }
    }
}

/// Decode `services:` (infrastructure protocols and periodic services the
/// settings add to the knowledge base's).
fn decode_services(node: &Node, services: &mut crate::services::Services, diags: &mut Diagnostics) {
    let Some(mut fields) = node.fields(diags, "services") else {
        return;
    };
    let strings = |node: &Node, what: &str, diags: &mut Diagnostics| -> Vec<String> {
        node.items(diags, what)
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i.text(diags, what).map(str::to_string))
            .collect()
    };
    service_entries(
        &mut fields,
        "infrastructure",
        &["name", "transport", "ports"],
        diags,
        &mut |entry, name, diags| {
            let transports = entry
                .require(diags, "transport")
                .map(|n| strings(n, "transport", diags))
                .unwrap_or_default();
            let mut ports = Vec::new();
            if let Some(list) = entry.get("ports").and_then(|n| n.items(diags, "ports")) {
                for p in list {
                    match p.text(diags, "port").map(str::parse::<u16>) {
                        Some(Ok(port)) => ports.push(port),
                        Some(Err(_)) => diags.error(p.pos, "a port is a number from 0 to 65535"),
                        None => {}
                    }
                }
            }
            services.add_infrastructure(name, &transports, &ports)
        },
    );
    service_entries(
        &mut fields,
        "periodic",
        &["name", "hosts"],
        diags,
        &mut |entry, name, diags| {
            let hosts = entry
                .require(diags, "hosts")
                .map(|n| strings(n, "hosts", diags))
                .unwrap_or_default();
            services.add_periodic(name, &hosts)
        },
    );
    fields.finish(diags, &["infrastructure", "periodic"]);
}

/// Each entry of the list `key` of `fields`: its required `name` and the
/// entry to `add`, whose refusal is reported at the entry; fields other
/// than `known` are reported unknown.
fn service_entries(
    fields: &mut cordon_yaml::Fields<'_>,
    key: &str,
    known: &[&str],
    diags: &mut Diagnostics,
    add: &mut dyn FnMut(&mut cordon_yaml::Fields<'_>, &str, &mut Diagnostics) -> Result<(), String>,
) {
    let Some(list) = fields.get(key).and_then(|n| n.items(diags, key)) else {
        return;
    };
    for item in list {
        let Some(mut entry) = item.fields(diags, key) else {
            continue;
        };
        let name = entry
            .require(diags, "name")
            .and_then(|n| n.text(diags, "name"))
            .unwrap_or("")
            .to_string();
        if let Err(e) = add(&mut entry, &name, diags) {
            diags.error(item.pos, e);
        }
        entry.finish(diags, known);
    }
}

/// Decode one detector's mapping: `enabled`, `allow`, `max_state` and its
/// own numeric parameters; anything else is an unknown field.
fn decode_settings(
    node: &Node,
    name: &str,
    common: &mut Common,
    params: Vec<(&'static str, Param<'_>)>,
    diags: &mut Diagnostics,
) {
    let Some(mut fields) = node.fields(diags, name) else {
        return;
    };
    if let Some(v) = fields.get("enabled")
        && let Some(b) = v.boolean(diags, "enabled")
    {
        common.enabled = b;
    }
    if let Some(v) = fields.get("max_state")
        && let Some(n) = v.text(diags, "max_state")
    {
        match n.parse::<usize>() {
            Ok(n) if n >= 16 => common.max_state = n,
            _ => diags.error(
                v.pos,
                format!("`max_state` must be a whole number of at least 16, not `{n}`"),
            ),
        }
    }
    if let Some(v) = fields.get("allow")
        && let Some(items) = v.items(diags, "allow")
    {
        for item in items {
            let Some(text) = item.text(diags, "allowlist entry") else {
                continue;
            };
            if let Ok(net) = text.parse::<IpNet>() {
                common.allow.nets.push(net);
            } else if let Ok(ip) = text.parse::<IpAddr>() {
                common.allow.nets.push(IpNet::from(ip));
            } else {
                match FqdnPattern::parse(text) {
                    Ok(p) => common.allow.names.push(p),
                    Err(e) => diags.error_hint(item.pos, e.message, e.hint),
                }
            }
        }
    }
    let mut known = vec!["enabled", "allow", "max_state"];
    for (key, param) in params {
        known.push(key);
        let Some(v) = fields.get(key) else { continue };
        let Some(text) = v.text(diags, key) else {
            continue;
        };
        let bad = |diags: &mut Diagnostics, what: &str| {
            diags.error(v.pos, format!("`{key}` must be {what}, not `{text}`"));
        };
        match param {
            Param::Count(slot) => match text.parse::<u64>() {
                Ok(n) => *slot = n,
                Err(_) => bad(diags, "a whole number"),
            },
            Param::Ratio(slot) => match text.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => *slot = n,
                _ => bad(diags, "a non-negative number"),
            },
            Param::Bytes(slot) => match ByteSize::parse(text) {
                Ok(b) => *slot = b.0,
                Err(_) => bad(diags, "a size such as `100MiB`"),
            },
            Param::Duration(slot) => match Window::parse(text) {
                Ok(w) => *slot = i64::try_from(w.0.as_millis()).unwrap_or(i64::MAX),
                Err(_) => bad(diags, "a duration such as `10m` or `1h`"),
            },
        }
    }
    fields.finish(diags, &known);
}
