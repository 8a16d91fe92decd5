//! NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) packets.
//!
//! Templates are kept per exporter address and observation domain (v9
//! source id), refreshed when re-sent and withdrawn on IPFIX withdrawal
//! messages. Options data carrying a sampling interval sets that exporter's
//! sampling rate, which multiplies byte and packet counts (as does the v5
//! header's sampling interval). Data that arrives before its template is
//! held for a few seconds and replayed when the template comes; if it does
//! not, the data is counted as dropped. Every count and length read from a
//! packet is checked against the packet: a lying length ends that packet's
//! decoding with a reason, never a panic or an oversized allocation.

mod fields;
mod packet;

use std::collections::HashMap;
use std::net::SocketAddr;

pub use fields::FieldSpec;
use packet::Cursor;

use crate::flow::Flow;
use crate::read::{Skip, SkipReason};

/// Limits that bound the decoder's memory whatever exporters send.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Exporter/domain pairs tracked.
    pub max_domains: usize,
    /// Templates per exporter/domain.
    pub max_templates: usize,
    /// Fields per template.
    pub max_fields: usize,
    /// Data sets held while waiting for their template, per domain.
    pub max_pending: usize,
    /// How long held data waits for its template, in milliseconds.
    pub pending_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_domains: 4096,
            max_templates: 1024,
            max_fields: 128,
            max_pending: 256,
            pending_ms: 10_000,
        }
    }
}

/// A template: the fields of each record and their total length
/// (`None` when a field has variable length).
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    /// The fields, in order.
    pub fields: Vec<FieldSpec>,
    /// Whether this is an options template (its records describe the
    /// exporter, not flows).
    pub options: bool,
    /// Scope fields at the front of an options record.
    pub scope_fields: usize,
}

/// Data that arrived before its template.
#[derive(Debug)]
struct Pending {
    template: u16,
    data: Vec<u8>,
    /// Header context needed to decode the data later.
    header: packet::Header,
    received_ms: i64,
}

#[derive(Debug, Default)]
struct Domain {
    templates: HashMap<u16, Template>,
    pending: Vec<Pending>,
    sampling: Option<u64>,
}

/// What one packet produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PacketOutcome {
    /// Flow records decoded (including ones replayed from held data).
    pub flows: u64,
    /// Templates learned or refreshed.
    pub templates: u64,
    /// Data records or sets that could not be decoded, with reasons.
    pub skipped: Vec<Skip>,
    /// Held data sets dropped because their template never came.
    pub expired: u64,
}

/// The decoder: template state for every exporter.
#[derive(Debug, Default)]
pub struct NetflowDecoder {
    domains: HashMap<(SocketAddr, u32), Domain>,
    limits: Limits,
}

impl NetflowDecoder {
    /// A decoder with `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        NetflowDecoder {
            domains: HashMap::new(),
            limits,
        }
    }

    /// How many templates are known in all.
    pub fn template_count(&self) -> usize {
        self.domains.values().map(|d| d.templates.len()).sum()
    }

    /// Decode one UDP payload from `exporter`, received at `now_ms`.
    pub fn packet(
        &mut self,
        exporter: SocketAddr,
        data: &[u8],
        now_ms: i64,
        out: &mut Vec<Flow>,
    ) -> PacketOutcome {
        let mut outcome = PacketOutcome::default();
        let mut c = Cursor::new(data);
        let Some(version) = c.u16() else {
            outcome
                .skipped
                .push(Skip::malformed("packet shorter than a version number"));
            return outcome;
        };
        match version {
            5 => packet::v5(data, out, &mut outcome),
            9 | 10 => self.templated(exporter, version, data, now_ms, out, &mut outcome),
            other => outcome.skipped.push(Skip::malformed(format!(
                "unsupported NetFlow version {other}"
            ))),
        }
        outcome.expired += self.expire(now_ms);
        outcome
    }

    /// Drop held data older than the limit; returns how many sets.
    pub fn expire(&mut self, now_ms: i64) -> u64 {
        let limit = self.limits.pending_ms;
        let mut dropped = 0;
        for d in self.domains.values_mut() {
            let before = d.pending.len();
            d.pending.retain(|p| now_ms - p.received_ms <= limit);
            dropped += (before - d.pending.len()) as u64;
        }
        dropped
    }

    fn templated(
        &mut self,
        exporter: SocketAddr,
        version: u16,
        data: &[u8],
        now_ms: i64,
        out: &mut Vec<Flow>,
        outcome: &mut PacketOutcome,
    ) {
        let header = match packet::header(version, data) {
            Ok(h) => h,
            Err(skip) => {
                outcome.skipped.push(skip);
                return;
            }
        };
        let key = (exporter, header.domain);
        if !self.domains.contains_key(&key) && self.domains.len() >= self.limits.max_domains {
            outcome.skipped.push(Skip::new(
                SkipReason::Malformed,
                format!(
                    "more than {} exporters; packet from {exporter} ignored",
                    self.limits.max_domains
                ),
            ));
            return;
        }
        let limits = self.limits;
        let domain = self.domains.entry(key).or_default();
        let sets = match packet::sets(version, data, header.body) {
            Ok(s) => s,
            Err(skip) => {
                outcome.skipped.push(skip);
                return;
            }
        };
        for (set_id, body) in sets {
            let template_set = if version == 9 { 0 } else { 2 };
            let options_set = if version == 9 { 1 } else { 3 };
            if set_id == template_set || set_id == options_set {
                let learned = packet::templates(version, set_id == options_set, body, &limits);
                match learned {
                    Ok(list) => {
                        for (id, template) in list {
                            match template {
                                None => {
                                    // IPFIX withdrawal: one template, or all
                                    // of the set's kind for the set id.
                                    if id == template_set || id == options_set {
                                        let options = id == options_set;
                                        domain.templates.retain(|_, t| t.options != options);
                                    } else {
                                        domain.templates.remove(&id);
                                    }
                                }
                                Some(t) => {
                                    if domain.templates.len() >= limits.max_templates
                                        && !domain.templates.contains_key(&id)
                                    {
                                        outcome.skipped.push(Skip::malformed(format!(
                                            "more than {} templates from {exporter}",
                                            limits.max_templates
                                        )));
                                        continue;
                                    }
                                    domain.templates.insert(id, t);
                                    outcome.templates += 1;
                                }
                            }
                        }
                    }
                    Err(skip) => outcome.skipped.push(skip),
                }
                // Replay held data whose template is now known.
                let (ready, waiting): (Vec<Pending>, Vec<Pending>) =
                    std::mem::take(&mut domain.pending)
                        .into_iter()
                        .partition(|p| domain.templates.contains_key(&p.template));
                domain.pending = waiting;
                for p in ready {
                    if let Some(t) = domain.templates.get(&p.template).cloned() {
                        packet::data(
                            version,
                            &t,
                            &p.header,
                            &p.data,
                            &mut domain.sampling,
                            out,
                            outcome,
                        );
                    }
                }
            } else if set_id >= 256 {
                match domain.templates.get(&set_id).cloned() {
                    Some(t) => packet::data(
                        version,
                        &t,
                        &header,
                        body,
                        &mut domain.sampling,
                        out,
                        outcome,
                    ),
                    None => {
                        if domain.pending.len() >= limits.max_pending {
                            outcome.skipped.push(Skip::new(
                                SkipReason::MissingTemplate,
                                format!(
                                    "data for unknown template {set_id} and the hold queue is full"
                                ),
                            ));
                        } else {
                            domain.pending.push(Pending {
                                template: set_id,
                                data: body.to_vec(),
                                header: header.clone(),
                                received_ms: now_ms,
                            });
                        }
                    }
                }
            } else {
                outcome
                    .skipped
                    .push(Skip::malformed(format!("reserved set id {set_id}")));
            }
        }
    }
}

#[cfg(test)]
mod tests;
