//! Pushing objects to a TAXII collection: envelopes no larger than the API
//! root's `max_content_length`, each answered by a status resource that is
//! followed until it is final.

use std::time::Duration;

use serde_json::Value;

use crate::client::{Client, ClientError};

/// Objects per envelope at most.
const MAX_PER_ENVELOPE: usize = 5_000;
/// Envelope size when the API root does not say.
const DEFAULT_MAX_CONTENT: usize = 10 * 1024 * 1024;
/// How long a pending status is followed.
const STATUS_WAIT: Duration = Duration::from_secs(300);

/// How a push went.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PushReport {
    /// Envelopes sent.
    pub envelopes: u64,
    /// Objects sent.
    pub total: u64,
    /// Objects the server took.
    pub success: u64,
    /// Objects it refused.
    pub failure: u64,
    /// Objects still pending when it stopped being followed.
    pub pending: u64,
    /// The refusals: object id and why.
    pub failures: Vec<(String, String)>,
    /// The status resources' ids.
    pub statuses: Vec<String>,
}

/// The largest envelope the API root takes.
///
/// # Errors
/// The API root cannot be read.
pub async fn max_content_length(client: &Client) -> Result<usize, ClientError> {
    let root = client.get(client.api_root()).await?;
    Ok(root
        .body
        .get("max_content_length")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 1024)
        .unwrap_or(DEFAULT_MAX_CONTENT))
}

/// Split `objects` into envelopes of at most `max_bytes` (an object larger
/// than that on its own goes alone: the server says whether it takes it).
pub fn envelopes(objects: &[Value], max_bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 16;
    for o in objects {
        let text = o.to_string();
        if !current.is_empty()
            && (size + text.len() + 1 > max_bytes || current.len() >= MAX_PER_ENVELOPE)
        {
            out.push(format!("{{\"objects\":[{}]}}", current.join(",")).into_bytes());
            current.clear();
            size = 16;
        }
        size += text.len() + 1;
        current.push(text);
    }
    if !current.is_empty() {
        out.push(format!("{{\"objects\":[{}]}}", current.join(",")).into_bytes());
    }
    out
}

/// Push `objects` to `collection`; `progress` is told after each envelope.
///
/// # Errors
/// The server refused an envelope (after retries), or its status could
/// not be read. Envelopes before it were taken.
pub async fn push(
    client: &Client,
    collection: &str,
    objects: &[Value],
    progress: &mut dyn FnMut(&PushReport),
) -> Result<PushReport, ClientError> {
    let max = max_content_length(client).await?;
    let url = client.url(&format!("collections/{collection}/objects/"))?;
    let mut report = PushReport::default();
    for body in envelopes(objects, max) {
        let mut status = client.post(&url, body).await?.body;
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(200);
        while status.get("status").and_then(Value::as_str) == Some("pending")
            && started.elapsed() < STATUS_WAIT
        {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            let id = status.get("id").and_then(Value::as_str).unwrap_or_default();
            let status_url = client.url(&format!("status/{id}/"))?;
            status = client.get(&status_url).await?.body;
        }
        let count = |k: &str| status.get(k).and_then(Value::as_u64).unwrap_or(0);
        report.envelopes += 1;
        report.total += count("total_count");
        report.success += count("success_count");
        report.failure += count("failure_count");
        report.pending += count("pending_count");
        if let Some(id) = status.get("id").and_then(Value::as_str) {
            report.statuses.push(id.to_string());
        }
        for f in status
            .get("failures")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            report.failures.push((
                f.get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                f.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("refused")
                    .to_string(),
            ));
        }
        progress(&report);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes_stay_under_the_limit() {
        let objects: Vec<Value> = (0..100)
            .map(|i| json!({"type": "x-thing", "n": i, "pad": "x".repeat(100)}))
            .collect();
        let out = envelopes(&objects, 1_000);
        assert!(out.len() > 10);
        let mut seen = 0;
        for e in &out {
            assert!(e.len() <= 1_000, "{}", e.len());
            let v: Value = serde_json::from_slice(e).unwrap();
            seen += v["objects"].as_array().unwrap().len();
        }
        assert_eq!(seen, 100);
        // One object larger than the limit goes alone.
        let big = vec![json!({"pad": "y".repeat(5_000)}), json!({"n": 1})];
        assert_eq!(envelopes(&big, 1_000).len(), 2);
        assert!(envelopes(&[], 1_000).is_empty());
    }
}
