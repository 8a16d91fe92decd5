//! Pulling a TAXII collection into the store, incrementally.
//!
//! A source remembers the `added_after` its next pull sends. Each page is
//! stored together with the new `added_after` in one transaction, so a
//! pull stopped anywhere (killed, server gone, retries exhausted) resumes
//! after what it kept. While a pull is under way the mark is one
//! microsecond before the page's last `date_added` (objects sharing that
//! time may still follow on the next page); when the server says there is
//! no more, it moves to that time itself. Objects read twice (an id and
//! version already kept) are not stored twice. Objects failing their STIX
//! checks are counted and named, never kept.

use cordon_flow::time::{now_ms, parse_rfc3339_us};
use cordon_store::StoreError;
use cordon_store::exchange::{Added, ExchangeStore, Source};
use serde_json::Value;

use crate::client::{Client, ClientError};
use crate::object::{check, id_of};

/// Most problems (invalid objects) kept in a report.
const MAX_PROBLEMS: usize = 20;

/// How a pull went.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PullReport {
    /// The source's name.
    pub source: String,
    /// Pages read.
    pub pages: u64,
    /// Objects received.
    pub received: u64,
    /// Objects kept that were new.
    pub added: u64,
    /// Objects already kept (read again).
    pub present: u64,
    /// Objects refused by the STIX checks.
    pub invalid: u64,
    /// The first refusals, with why.
    pub problems: Vec<String>,
    /// Whether the server had nothing more.
    pub complete: bool,
}

/// Why a pull stopped.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The source is named for another server or collection.
    #[error("{0}")]
    Source(String),
    /// The server failed (after retries); what was read before is kept.
    #[error("{error} (kept so far: {} new objects in {} pages; the next pull resumes there)", report.added, report.pages)]
    Client {
        /// The failure.
        error: ClientError,
        /// What was done before it.
        report: Box<PullReport>,
    },
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What to pull.
#[derive(Clone, Debug)]
pub struct PullSpec {
    /// The source's name in the store.
    pub name: String,
    /// The collection id on the server.
    pub collection: String,
    /// Objects per page asked for.
    pub limit: usize,
}

/// The name a source gets when none is given: the server's host (and
/// port) and the collection id.
pub fn default_name(client: &Client, collection: &str) -> String {
    let url = client.api_root();
    let host = url.host_str().unwrap_or("taxii");
    match url.port() {
        Some(p) => format!("{host}:{p}/{collection}"),
        None => format!("{host}/{collection}"),
    }
}

/// Pull `spec` from `client` into `store`; `progress` is told after each
/// page.
///
/// # Errors
/// The source's name is taken by another server or collection; the
/// server failed after its retries (what was kept stays kept); the store
/// failed.
pub async fn pull<S: ExchangeStore>(
    client: &Client,
    store: &mut S,
    spec: &PullSpec,
    progress: &mut dyn FnMut(&PullReport),
) -> Result<PullReport, PullError> {
    let url_text = client.api_root().to_string();
    let mut source = match store.sources()?.into_iter().find(|s| s.name == spec.name) {
        Some(s) if s.url != url_text || s.collection != spec.collection => {
            return Err(PullError::Source(format!(
                "source `{}` pulls collection `{}` of {}; give another --name for collection `{}` of {url_text}",
                spec.name, s.collection, s.url, spec.collection
            )));
        }
        Some(s) => s,
        None => Source {
            name: spec.name.clone(),
            url: url_text,
            collection: spec.collection.clone(),
            added_after_us: None,
            last_pull_ms: None,
            complete: false,
            last_error: None,
            objects: 0,
        },
    };
    store.save_source(&source)?;
    let mut report = PullReport {
        source: spec.name.clone(),
        ..PullReport::default()
    };
    let outcome = pages(client, store, spec, &source, &mut report, progress).await;
    source.last_pull_ms = Some(now_ms());
    source.complete = outcome.is_ok();
    source.last_error = outcome.as_ref().err().map(ToString::to_string);
    // The mark moved with each page; keep it as stored.
    if let Some(kept) = store.sources()?.into_iter().find(|s| s.name == spec.name) {
        source.added_after_us = kept.added_after_us;
    }
    store.save_source(&source)?;
    match outcome {
        Ok(()) => {
            report.complete = true;
            Ok(report)
        }
        Err(PullError::Client { error, .. }) => Err(PullError::Client {
            error,
            report: Box::new(report),
        }),
        Err(e) => Err(e),
    }
}

async fn pages<S: ExchangeStore>(
    client: &Client,
    store: &mut S,
    spec: &PullSpec,
    source: &Source,
    report: &mut PullReport,
    progress: &mut dyn FnMut(&PullReport),
) -> Result<(), PullError> {
    let fail = |error: ClientError| PullError::Client {
        error,
        report: Box::default(),
    };
    let base = client
        .url(&format!("collections/{}/objects/", spec.collection))
        .map_err(fail)?;
    let mut added_after = source.added_after_us;
    let mut next: Option<String> = None;
    loop {
        let mut url = base.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &spec.limit.max(1).to_string());
            // The filters stay those of the first page: a `next` token
            // belongs to its query.
            if let Some(a) = added_after {
                q.append_pair("added_after", &cordon_flow::time::format_rfc3339_us(a));
            }
            if let Some(n) = &next {
                q.append_pair("next", n);
            }
        }
        let reply = client.get(&url).await.map_err(fail)?;
        let protocol = |message: String| {
            fail(ClientError::Protocol {
                url: url.to_string(),
                message,
            })
        };
        if !reply.body.is_object() {
            return Err(protocol("the answer is not a TAXII envelope".to_string()));
        }
        let objects: &[Value] = reply
            .body
            .get("objects")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let more = reply
            .body
            .get("more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let last = reply
            .header("x-taxii-date-added-last")
            .and_then(parse_rfc3339_us);
        let mut kept = Vec::with_capacity(objects.len());
        for o in objects {
            match check(o) {
                Ok(n) => kept.push(n),
                Err(why) => {
                    report.invalid += 1;
                    if report.problems.len() < MAX_PROBLEMS {
                        report.problems.push(format!("{}: {why}", id_of(o)));
                    }
                }
            }
        }
        // Where the next pull starts if this one stops after this page.
        let mark = match last {
            Some(l) if more => Some(l - 1),
            Some(l) => Some(l),
            None => added_after,
        };
        let added = store.add_pulled(&spec.name, &kept, mark)?;
        report.pages += 1;
        report.received += objects.len() as u64;
        for a in added {
            match a {
                Added::New { .. } => report.added += 1,
                Added::Present { .. } => report.present += 1,
            }
        }
        progress(report);
        if !more {
            return Ok(());
        }
        if objects.is_empty() {
            return Err(protocol(
                "the server says there is more but sent no objects".to_string(),
            ));
        }
        // Some servers (medallion) give one token for every page of a query.
        match reply.body.get("next").and_then(Value::as_str) {
            Some(n) => next = Some(n.to_string()),
            None => {
                // No token: go on from the page's last date_added.
                let Some(l) = last else {
                    return Err(protocol(
                        "`more` is true but there is neither a `next` token nor an \
                         X-TAXII-Date-Added-Last header to go on from"
                            .to_string(),
                    ));
                };
                if added_after == Some(l) {
                    return Err(protocol(
                        "the server sends the same page again (more objects share one date_added \
                         than its page holds, and it gives no `next` token)"
                            .to_string(),
                    ));
                }
                added_after = Some(l);
                next = None;
            }
        }
    }
}
