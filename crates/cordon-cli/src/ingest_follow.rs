//! What `cordon ingest` does beyond storing: run a response playbook on
//! the findings (`--playbook`, `--responses`), and follow growing files
//! (`--follow`), detecting and responding as records arrive.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use cordon_detect::{Engine, Finding};
use cordon_flow::Format;
use cordon_pipeline::Pipeline;
use cordon_policy::CompiledPolicy;
use cordon_response::Playbook;
use cordon_response::file::{self, FileError};
use cordon_response::playbook::Outcome;
use cordon_store::{ExchangeStore, FindingStore, SqliteStore, Store};

use crate::outln;

/// A playbook and the responses file it writes.
pub struct Responder {
    playbook: Playbook,
    responses: PathBuf,
    policy: Arc<CompiledPolicy>,
    never: Vec<(ipnet::IpNet, String)>,
}

impl Responder {
    /// Load `playbook`, to write to `responses`, checking names against
    /// `policy` (an empty policy when none).
    pub fn load(
        playbook: &Path,
        responses: &Path,
        policy: Option<Arc<CompiledPolicy>>,
    ) -> anyhow::Result<Responder> {
        let text = std::fs::read_to_string(playbook)
            .with_context(|| format!("cannot read `{}`", playbook.display()))?;
        let parsed = Playbook::parse(&playbook.display().to_string(), &text)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let policy = match policy {
            Some(p) => p,
            None => cordon_response::empty_policy()?,
        };
        Ok(Responder {
            playbook: parsed,
            responses: responses.to_path_buf(),
            policy,
            never: cordon_response::system_never_block(),
        })
    }

    /// Run the playbook on `findings`, writing the responses file once.
    ///
    /// # Errors
    /// The responses file cannot be read or written.
    pub fn apply(&self, findings: &[Finding]) -> Result<Vec<Outcome>, FileError> {
        let now = cordon_flow::time::now_ms();
        file::update(&self.responses, |doc| -> Result<Vec<Outcome>, FileError> {
            Ok(self
                .playbook
                .apply(doc, findings, &self.policy, now, &self.never))
        })
    }
}

/// One line per outcome that did something (`exists` says nothing new).
pub fn tell(outcomes: &[Outcome]) -> anyhow::Result<()> {
    for o in outcomes.iter().filter(|o| o.result != "exists") {
        outln!(
            "response: {} {} ({}, rule {}, finding {}){}",
            o.id.as_ref().map_or("-", |i| i.0.as_str()),
            o.action,
            o.result,
            o.rule,
            o.finding,
            o.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Follow `files` until SIGINT or SIGTERM: twice a second, store what was
/// added to each, score the detectors, save findings and incidents, and
/// run the playbook on them.
#[expect(clippy::too_many_arguments, reason = "the parts ingest already built")]
pub fn follow(
    files: &[PathBuf],
    format: Option<Format>,
    policy: Option<Arc<CompiledPolicy>>,
    dns: Option<Arc<cordon_flow::dns::DnsAnswers>>,
    store: &mut SqliteStore,
    mut engine: Option<&mut Engine>,
    responder: Option<&Responder>,
    store_path: &Path,
    detection: &crate::args::DetectionArgs,
) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    outln!(
        "following {} file{} into {} (Ctrl-C stops)",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        store_path.display()
    );
    let mut stored_total = 0u64;
    let mut known = std::collections::BTreeSet::new();
    let mut intel_mark = store.intel_mark()?;
    while !stop.load(Ordering::Relaxed) {
        // Intelligence pushed or pulled into the store meanwhile is
        // matched from the next flow on.
        if let Some(e) = engine.as_deref_mut() {
            let mark = store.intel_mark()?;
            if mark != intel_mark {
                intel_mark = mark;
                if let Ok(intel) = crate::common::load_intel(detection, Some(store)) {
                    e.set_intel(intel);
                }
            }
        }
        let mut stored = 0;
        for f in files {
            let mut pipeline = Pipeline::builder()
                .policy(policy.clone())
                .dns(dns.clone())
                .store(store)
                .detect(engine.as_deref_mut())
                .build();
            let summary = pipeline.ingest_growing(f, format, &mut |_| {})?;
            drop(pipeline);
            if let Some(e) = &summary.error {
                tracing::warn!(input = %f.display(), "{e}");
            }
            stored += summary.stored;
        }
        stored_total += stored;
        if let Some(e) = engine.as_deref_mut()
            && stored > 0
        {
            let findings = store.save_findings(e.checkpoint())?;
            store.relink(e.kb())?;
            for f in &findings {
                if known.insert(f.id.clone()) {
                    outln!(
                        "finding: {} {} {} ({} -> {})",
                        f.id,
                        f.severity.as_str(),
                        f.kind.as_str(),
                        f.src,
                        f.dst
                    );
                }
            }
            if let Some(r) = responder {
                match r.apply(&findings) {
                    Ok(outcomes) => tell(&outcomes)?,
                    Err(e) => eprintln!("error: {e}; no response was written"),
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    outln!("stopped: {stored_total} flows stored while following");
    Ok(ExitCode::SUCCESS)
}
