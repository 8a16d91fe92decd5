//! The NetFlow/IPFIX socket: UDP packets in, prepared flows to the sinks,
//! committed to the store at least once per flush interval.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cordon_flow::sources::netflow::NetflowDecoder;
use cordon_flow::{Location, Report, Skip, SkipReason};
use serde::Serialize;

use crate::{BATCH, Pipeline, PipelineError};

/// Running totals of a collector.
#[derive(Debug, Default, Serialize)]
pub struct CollectStats {
    /// UDP packets received.
    pub packets: u64,
    /// Flow records decoded.
    pub flows: u64,
    /// Flows committed to the store.
    pub stored: u64,
    /// Templates learned or refreshed.
    pub templates: u64,
    /// Data sets dropped because their template never came.
    pub dropped_without_template: u64,
    /// Records or packets skipped, with reasons and examples.
    #[serde(flatten)]
    pub report: Report,
}

impl Pipeline<'_> {
    /// Receive on `socket` until `stop` is set. Flows are committed to the
    /// store every `flush_every` (and whenever a batch fills);
    /// `on_flush` is called after each with the totals so far.
    ///
    /// # Errors
    /// Store errors (what was committed stays) and socket errors other than
    /// timeouts.
    pub fn collect(
        &mut self,
        socket: &UdpSocket,
        stop: &AtomicBool,
        flush_every: Duration,
        on_flush: &mut dyn FnMut(&CollectStats),
    ) -> Result<CollectStats, PipelineError> {
        let local = socket
            .local_addr()
            .map_or_else(|_| "udp socket".to_string(), |a| a.to_string());
        let io = |e: std::io::Error| PipelineError::Io {
            what: format!("collector on udp {local}"),
            source: e,
        };
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(io)?;
        let name = format!("collector:{local}");
        let input = match &mut self.store {
            Some(store) => Some(
                store
                    .begin_input(&format!("{name}:{}", cordon_flow::time::now_ms()), &name)?
                    .id,
            ),
            None => None,
        };
        tracing::info!(listen = %local, "collecting NetFlow/IPFIX");
        let mut decoder = NetflowDecoder::default();
        let mut stats = CollectStats::default();
        let mut buf = vec![0u8; 65_536];
        let mut flows = Vec::new();
        let mut last_flush = Instant::now();
        loop {
            let stopping = stop.load(Ordering::Relaxed);
            if !stopping {
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        stats.packets += 1;
                        let now = cordon_flow::time::now_ms();
                        let outcome =
                            decoder.packet(from, buf.get(..n).unwrap_or(&[]), now, &mut flows);
                        stats.flows += outcome.flows;
                        stats.templates += outcome.templates;
                        stats.dropped_without_template += outcome.expired;
                        stats.report.records += outcome.flows + outcome.skipped.len() as u64;
                        stats.report.flows += outcome.flows;
                        let at = Location {
                            file: from.to_string().into(),
                            line: None,
                            offset: stats.packets,
                            within: Some(format!("packet {}", stats.packets)),
                        };
                        for skip in outcome.skipped {
                            tracing::debug!(exporter = %from, packet = stats.packets, reason = %skip.detail, "record skipped");
                            stats.report.skip(&at, skip);
                        }
                        for _ in 0..outcome.expired {
                            stats.report.skip(
                                &at,
                                Skip::new(
                                    SkipReason::MissingTemplate,
                                    "data set held for its template, which never came",
                                ),
                            );
                        }
                        self.take(&mut flows);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        let expired = decoder.expire(cordon_flow::time::now_ms());
                        stats.dropped_without_template += expired;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io(e)),
                }
            }
            if stopping || last_flush.elapsed() >= flush_every || self.batch.len() >= BATCH {
                if !self.batch.is_empty() {
                    let n = self.commit(input, stats.packets)?;
                    if self.stores() {
                        stats.stored += n;
                    }
                }
                last_flush = Instant::now();
                on_flush(&stats);
            }
            if stopping {
                if let (Some(store), Some(input)) = (&mut self.store, input) {
                    store.finish_input(input)?;
                }
                tracing::info!(
                    packets = stats.packets,
                    stored = stats.stored,
                    "collector stopped"
                );
                return Ok(stats);
            }
        }
    }
}
