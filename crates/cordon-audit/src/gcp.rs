//! GCP Cloud Audit Logs (a Cloud Logging `LogEntry` whose `protoPayload`
//! is an `AuditLog`) into [`AuditEvent`]s.

use serde_json::{Map, Value};

use crate::event::{AuditEvent, Cloud, Principal};

/// Whether `record` is a Cloud Audit Logs entry.
pub fn is_record(record: &Value) -> bool {
    record
        .get("protoPayload")
        .and_then(|p| p.get("@type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("google.cloud.audit.AuditLog"))
}

fn text<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    v?.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Normalise one entry.
///
/// # Errors
/// What makes it no event (no time, no method).
pub fn normalise(r: &Value) -> Result<AuditEvent, String> {
    let p = r.get("protoPayload");
    let time = text(Some(r), "timestamp").ok_or("no `timestamp`")?;
    let time_ms = crate::parse_time(time).ok_or_else(|| {
        format!(
            "`timestamp` is not a time: `{}`",
            time.chars().take(40).collect::<String>()
        )
    })?;
    let method = text(p, "methodName").ok_or("no `protoPayload.methodName`")?;
    let mut e = AuditEvent::new(Cloud::Gcp, time_ms);
    e.action = method.to_string();
    e.service = text(p, "serviceName").unwrap_or_default().to_string();
    let labels = r.get("resource").and_then(|x| x.get("labels"));
    e.account = text(labels, "project_id")
        .map(str::to_string)
        .or_else(|| {
            text(Some(r), "logName")
                .and_then(|l| l.strip_prefix("projects/"))
                .and_then(|l| l.split('/').next())
                .map(str::to_string)
        })
        .or_else(|| text(labels, "organization_id").map(str::to_string))
        .unwrap_or_default();
    e.region = text(labels, "location")
        .or_else(|| text(labels, "zone"))
        .map(str::to_string);
    let auth = p.and_then(|p| p.get("authenticationInfo"));
    let email = text(auth, "principalEmail")
        .or_else(|| text(auth, "principalSubject"))
        .unwrap_or_default();
    e.principal = Principal {
        kind: if email.ends_with(".gserviceaccount.com") {
            "serviceAccount".into()
        } else if email.is_empty() {
            "anonymous".into()
        } else {
            "user".into()
        },
        id: email.to_string(),
        account: email
            .strip_suffix(".iam.gserviceaccount.com")
            .and_then(|s| s.rsplit_once('@'))
            .map(|(_, project)| project.to_string()),
        ..Principal::default()
    };
    if let Some(chain) = auth
        .and_then(|a| a.get("serviceAccountDelegationInfo"))
        .and_then(Value::as_array)
        .and_then(|c| c.first())
    {
        e.principal.source_identity = chain
            .get("firstPartyPrincipal")
            .and_then(|f| text(Some(f), "principalEmail"))
            .map(str::to_string);
    }
    let meta = p.and_then(|p| p.get("requestMetadata"));
    e.source = text(meta, "callerIp").unwrap_or_default().to_string();
    e.source_ip = crate::address(&e.source);
    e.user_agent = text(meta, "callerSuppliedUserAgent")
        .unwrap_or_default()
        .to_string();
    if let Some(name) = text(p, "resourceName") {
        e.resources.push(name.to_string());
    }
    if let Some(names) = p
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("resourceNames"))
        .and_then(Value::as_array)
    {
        e.resources
            .extend(names.iter().filter_map(Value::as_str).map(str::to_string));
    }
    let code = p
        .and_then(|p| p.get("status"))
        .and_then(|s| s.get("code"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if code != 0 {
        e.success = false;
        e.error = Some(
            text(p.and_then(|p| p.get("status")), "message")
                .map_or_else(|| format!("code {code}"), str::to_string),
        );
    }
    // A Google sign-in says its outcome in its method, not its status.
    if e.success && e.action.ends_with("LoginService.loginFailure") {
        e.success = false;
        e.error = Some("login failure".into());
    }
    e.event_id = text(Some(r), "insertId").map(str::to_string);
    e.request_id = text(r.get("operation"), "id").map(str::to_string);
    let mut detail = Map::new();
    for key in [
        "request",
        "response",
        "metadata",
        "serviceData",
        "authorizationInfo",
    ] {
        if let Some(v) = p.and_then(|p| p.get(key)).filter(|v| !v.is_null()) {
            detail.insert(key.to_string(), v.clone());
        }
    }
    if !detail.is_empty() {
        e.detail = Value::Object(detail).into();
    }
    Ok(e)
}
