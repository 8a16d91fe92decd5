//! AWS CloudTrail records into [`AuditEvent`]s: management and data
//! events, console sign-ins, assumed-role sessions with their issuer, MFA
//! and source identity, S3 bytes.

use serde_json::{Map, Value};

use crate::event::{AuditEvent, Cloud, Principal};

/// Whether `record` looks like a CloudTrail event (an event name and the
/// service that logged it).
pub fn is_record(record: &Value) -> bool {
    record.get("eventName").is_some()
        && (record.get("eventSource").is_some() || record.get("eventVersion").is_some())
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The parts of a record kept as the event's detail, for the detectors.
const DETAIL: [&str; 8] = [
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "serviceEventDetails",
    "errorMessage",
    "eventType",
    "sharedEventID",
    "vpcEndpointId",
];

/// Normalise one CloudTrail record.
///
/// # Errors
/// What makes it no event: a missing `eventTime` or `eventName`, an event
/// version this reader does not know.
pub fn normalise(r: &Value) -> Result<AuditEvent, String> {
    let detail: Map<String, Value> = DETAIL
        .iter()
        .filter_map(|k| {
            r.get(*k)
                .filter(|v| !v.is_null())
                .map(|v| ((*k).to_string(), v.clone()))
        })
        .collect();
    build(r, detail)
}

/// [`normalise`] of a record the caller gives up: its detail is moved, not
/// copied.
///
/// # Errors
/// As [`normalise`].
pub fn normalise_owned(mut r: Value) -> Result<AuditEvent, String> {
    let mut detail = Map::new();
    if let Some(o) = r.as_object_mut() {
        for k in DETAIL {
            if let Some(v) = o.remove(k).filter(|v| !v.is_null()) {
                detail.insert(k.to_string(), v);
            }
        }
    }
    build(&r, detail)
}

/// The event of record `r` whose detail (the [`DETAIL`] parts) is `detail`.
fn build(r: &Value, detail: Map<String, Value>) -> Result<AuditEvent, String> {
    if let Some(v) = text(r, "eventVersion")
        && v.split('.').next() != Some("1")
    {
        return Err(format!(
            "CloudTrail event version `{}` is not one this reader knows (1.x)",
            v.chars().take(16).collect::<String>()
        ));
    }
    let time = text(r, "eventTime").ok_or("no `eventTime`")?;
    let time_ms = crate::parse_time(time).ok_or_else(|| {
        format!(
            "`eventTime` is not a time: `{}`",
            time.chars().take(40).collect::<String>()
        )
    })?;
    let action = text(r, "eventName").ok_or("no `eventName`")?;
    let mut e = AuditEvent::new(Cloud::Aws, time_ms);
    e.action = action.to_string();
    e.service = text(r, "eventSource")
        .map(|s| s.trim_end_matches(".amazonaws.com").to_string())
        .unwrap_or_default();
    e.region = text(r, "awsRegion").map(str::to_string);
    e.source = text(r, "sourceIPAddress").unwrap_or_default().to_string();
    e.source_ip = crate::address(&e.source);
    e.user_agent = text(r, "userAgent").unwrap_or_default().to_string();
    e.request_id = text(r, "requestID").map(str::to_string);
    e.event_id = text(r, "eventID").map(str::to_string);
    e.read_only = r.get("readOnly").and_then(|v| match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    e.principal = principal(r.get("userIdentity").unwrap_or(&Value::Null));
    e.account = text(r, "recipientAccountId")
        .or(e.principal.account.as_deref())
        .unwrap_or_default()
        .to_string();
    let login_failed = detail
        .get("responseElements")
        .and_then(|v| text(v, "ConsoleLogin"))
        .is_some_and(|v| v == "Failure");
    e.error = text(r, "errorCode")
        .map(str::to_string)
        .or_else(|| login_failed.then(|| "Failure".to_string()));
    e.success = e.error.is_none();
    if let Some(list) = r.get("resources").and_then(Value::as_array) {
        e.resources = list
            .iter()
            .filter_map(|x| text(x, "ARN").or_else(|| text(x, "arn")))
            .map(str::to_string)
            .collect();
    }
    let params = detail.get("requestParameters");
    if let Some(bucket) = params.and_then(|p| text(p, "bucketName")) {
        let arn = match params.and_then(|p| text(p, "key")) {
            Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
            None => format!("arn:aws:s3:::{bucket}"),
        };
        if !e.resources.contains(&arn) {
            e.resources.push(arn);
        }
    }
    let extra = detail.get("additionalEventData");
    let count = |k: &str| {
        extra.and_then(|x| x.get(k)).and_then(|v| match v {
            Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
    };
    e.bytes_out = count("bytesTransferredOut");
    e.bytes_in = count("bytesTransferredIn");
    if e.action == "ConsoleLogin"
        && let Some(mfa) = extra.and_then(|x| text(x, "MFAUsed"))
    {
        e.principal.mfa = Some(mfa == "Yes");
    }
    if !detail.is_empty() {
        e.detail = Value::Object(detail);
    }
    Ok(e)
}

fn principal(identity: &Value) -> Principal {
    let mut p = Principal {
        kind: text(identity, "type").unwrap_or("Unknown").to_string(),
        id: text(identity, "arn")
            .or_else(|| text(identity, "principalId"))
            .or_else(|| text(identity, "invokedBy"))
            .unwrap_or_default()
            .to_string(),
        account: text(identity, "accountId").map(str::to_string),
        access_key: text(identity, "accessKeyId").map(str::to_string),
        ..Principal::default()
    };
    if p.id.is_empty()
        && let Some(name) = text(identity, "userName")
    {
        p.id = name.to_string();
    }
    if let Some(ctx) = identity.get("sessionContext") {
        p.role = ctx
            .get("sessionIssuer")
            .and_then(|i| text(i, "arn"))
            .map(str::to_string);
        p.source_identity = text(ctx, "sourceIdentity").map(str::to_string);
        p.mfa = ctx
            .get("attributes")
            .and_then(|a| a.get("mfaAuthenticated"))
            .and_then(|v| match v {
                Value::Bool(b) => Some(*b),
                Value::String(s) => s.parse().ok(),
                _ => None,
            });
    }
    if p.kind == "AssumedRole" {
        // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
        p.session = p.id.rsplit_once('/').map(|(_, s)| s.to_string());
    }
    p
}
