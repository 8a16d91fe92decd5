//! `cordon collect`: NetFlow/IPFIX over UDP into the store through the
//! pipeline.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cordon_pipeline::Pipeline;

use crate::args::CollectArgs;
use crate::common::{compile, open_store};
use crate::outln;

/// `cordon collect`
pub fn run(args: &CollectArgs) -> anyhow::Result<ExitCode> {
    let policy = match &args.policy {
        None => None,
        Some(p) => match compile(p, &args.inventory) {
            Ok(c) => Some(c),
            Err(code) => return Ok(code),
        },
    };
    let mut store = open_store(&args.store)?;
    let socket = std::net::UdpSocket::bind(args.listen)
        .with_context(|| format!("cannot listen on udp {}", args.listen))?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    eprintln!(
        "collecting NetFlow/IPFIX on udp {} into {}",
        socket.local_addr()?,
        args.store.path().display()
    );
    let terminal = std::io::stderr().is_terminal();
    let mut pipeline = Pipeline::builder().policy(policy).store(&mut store).build();
    let stats = pipeline.collect(
        &socket,
        &stop,
        std::time::Duration::from_millis(args.flush_ms.max(10)),
        &mut |s| {
            if terminal {
                eprint!(
                    "\r\x1b[K{} packets, {} flows stored, {} templates, {} skipped",
                    s.packets,
                    s.stored,
                    s.templates,
                    s.report.skipped_total()
                );
            }
        },
    )?;
    if terminal {
        eprintln!();
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        outln!(
            "{} packets, {} flows stored, {} templates, {} data sets dropped without template",
            stats.packets,
            stats.stored,
            stats.templates,
            stats.dropped_without_template
        );
        for (reason, c) in &stats.report.skipped {
            outln!("  skipped {} {}:", c.count, reason.as_str());
            for e in &c.examples {
                outln!("    {e}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
