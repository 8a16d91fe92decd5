//! Lateral movement: an established connection over an admin protocol (SSH,
//! RDP, SMB, WinRM, RPC, VNC) or to a database port, between two internal
//! endpoints, that no allow rule covers — or, without a policy, that is new
//! for the source after a learning period.
//!
//! Without a policy, RPC and SMB to a domain controller (a host seen
//! answering Kerberos or LDAP) are domain background (logons, Group
//! Policy, replication), not movement; and a first use is at most
//! `medium`, since nothing says whether it is sanctioned.

use cordon_core::FindingKind;
use std::net::IpAddr;

use cordon_flow::Flow;

use super::{Detector, admin_protocol, dst_internal, fact, failed, finding, src_internal};
use crate::bounded::{Aged, Bounded};
use crate::config::Lateral as Settings;
use crate::finding::Finding;

struct Seen(i64);

impl Aged for Seen {
    fn last_ms(&self) -> i64 {
        self.0
    }
}

/// The lateral-movement detector.
pub struct Lateral {
    cfg: Settings,
    first_ms: Option<i64>,
    /// Hosts seen answering Kerberos or LDAP: domain controllers.
    directory: Bounded<IpAddr, Seen>,
    pairs: Bounded<(IpAddr, IpAddr, u16), Seen>,
    ports: Bounded<(IpAddr, u16), Seen>,
}

impl Lateral {
    /// A detector with `cfg`.
    pub fn new(cfg: Settings) -> Self {
        Lateral {
            directory: Bounded::new(cfg.common.max_state),
            pairs: Bounded::new(cfg.common.max_state),
            ports: Bounded::new(cfg.common.max_state),
            first_ms: None,
            cfg,
        }
    }
}

impl Detector for Lateral {
    fn name(&self) -> &'static str {
        "lateral-movement"
    }

    fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        if matches!(flow.dst_port, 88 | 389 | 636 | 3268) && !failed(flow) {
            self.directory.entry(flow.dst_ip, || Seen(flow.start_ms)).0 = flow.start_ms;
        }
        let Some((protocol, technique)) = admin_protocol(flow.dst_port) else {
            return;
        };
        if flow.protocol != 6
            || !src_internal(flow)
            || !dst_internal(flow)
            || self.cfg.common.allow.contains(flow.src_ip, None)
            || self.cfg.common.allow.contains(flow.dst_ip, None)
        {
            return;
        }
        let first = *self.first_ms.get_or_insert(flow.start_ms);
        // Established: answered, and for two-way records some bytes back.
        let min = self.cfg.min_bytes;
        let established = !failed(flow)
            && flow.bytes_out >= min
            && ((flow.bytes_in == 0 && flow.packets_in == 0) || flow.bytes_in >= min);
        let t = flow.start_ms;
        let pair_key = (flow.src_ip, flow.dst_ip, flow.dst_port);
        let port_key = (flow.src_ip, flow.dst_port);
        let pair_known = self.pairs.get_mut(&pair_key).is_some();
        let port_known = self.ports.get_mut(&port_key).is_some();
        if established {
            self.pairs.entry(pair_key, || Seen(t)).0 = t;
            self.ports.entry(port_key, || Seen(t)).0 = t;
        }
        if !established {
            return;
        }
        let (reason, score) = match flow.enrichment.as_deref() {
            Some(e) if e.verdict == cordon_core::Verdict::Allow => return,
            Some(e) => (
                format!(
                    "the policy says {} ({})",
                    e.verdict,
                    e.rule.as_deref().unwrap_or("default deny")
                ),
                85.0,
            ),
            None => {
                if t < first + self.cfg.learn || pair_known || port_known {
                    return;
                }
                if matches!(flow.dst_port, 135 | 139 | 445)
                    && self.directory.get_mut(&flow.dst_ip).is_some()
                {
                    return;
                }
                (
                    format!(
                        "the source had not used {protocol} before (no policy says whether it may)"
                    ),
                    69.0,
                )
            }
        };
        let mut f = finding(
            FindingKind::LateralMovement,
            &format!("{}>{}:{}", flow.src_ip, flow.dst_ip, flow.dst_port),
            flow,
            score,
            format!(
                "{protocol} from {} to {}: {reason}",
                flow.src_ip, flow.dst_ip
            ),
        );
        f.techniques = vec![technique.to_string()];
        fact(&mut f, "protocol", protocol);
        fact(&mut f, "bytes_out", flow.bytes_out);
        fact(&mut f, "bytes_in", flow.bytes_in);
        out.push(f);
    }

    fn state(&self) -> usize {
        self.pairs.len() + self.ports.len()
    }

    fn evicted(&self) -> u64 {
        self.pairs.evicted() + self.ports.evicted()
    }
}
