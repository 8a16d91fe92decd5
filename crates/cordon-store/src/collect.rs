//! The NetFlow/IPFIX collector: UDP packets in, enriched flows into the
//! store, committed at least once a second.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cordon_flow::enrich::Enricher;
use cordon_flow::orient::orient;
use cordon_flow::sources::netflow::NetflowDecoder;
use cordon_flow::{Flow, Location, Report};
use cordon_policy::CompiledPolicy;
use serde::Serialize;

use crate::{FlowStore, StoreError};

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

/// Receive on `socket` until `stop` is set, storing flows in `store`.
/// `on_flush` is called after each commit with the totals so far.
///
/// # Errors
/// Store errors (what was committed stays) and socket errors other than
/// timeouts.
pub fn collect(
    socket: &UdpSocket,
    store: &mut dyn FlowStore,
    policy: Option<Arc<CompiledPolicy>>,
    stop: &AtomicBool,
    flush_every: Duration,
    on_flush: &mut dyn FnMut(&CollectStats),
) -> Result<CollectStats, StoreError> {
    let io = |e: std::io::Error| StoreError::Io {
        path: socket
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        source: e,
    };
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(io)?;
    let name = format!("collector:{}", socket.local_addr().map_err(io)?);
    let input = store.begin_input(&format!("{name}:{}", cordon_flow::time::now_ms()), &name)?;
    let mut enricher = policy.map(Enricher::new);
    let mut decoder = NetflowDecoder::default();
    let mut stats = CollectStats::default();
    let mut batch: Vec<Flow> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut last_flush = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    stats.packets += 1;
                    let now = cordon_flow::time::now_ms();
                    let mut flows = Vec::new();
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
                        stats.report.skip(&at, skip);
                    }
                    for _ in 0..outcome.expired {
                        stats.report.skip(
                            &at,
                            cordon_flow::Skip::new(
                                cordon_flow::SkipReason::MissingTemplate,
                                "data set held for its template, which never came",
                            ),
                        );
                    }
                    for flow in flows {
                        let mut flow = orient(flow);
                        if let Some(e) = &mut enricher {
                            e.enrich(&mut flow);
                        }
                        batch.push(flow);
                    }
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
        if stopping || last_flush.elapsed() >= flush_every || batch.len() >= crate::ingest::BATCH {
            if !batch.is_empty() {
                store.append(input.id, &batch, stats.packets)?;
                stats.stored += batch.len() as u64;
                batch.clear();
            }
            last_flush = Instant::now();
            on_flush(&stats);
        }
        if stopping {
            store.finish_input(input.id)?;
            return Ok(stats);
        }
    }
}
