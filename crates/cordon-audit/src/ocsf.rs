//! Audit events as OCSF 1.3.0: sign-ins as Authentication (class 3002),
//! every other call as API Activity (class 6003), both with the `cloud`
//! profile (the account, region and provider; the API called).

use serde_json::{Value, json};

use crate::event::{Activity, AuditEvent, Cloud};

/// OCSF schema version the mapping follows.
pub const OCSF_VERSION: &str = "1.3.0";

/// The OCSF API activity (1 Create, 2 Read, 3 Update, 4 Delete, 99
/// Other) of an operation.
fn activity(action: &str) -> (u32, &'static str) {
    match Activity::of(action) {
        Activity::Create => (1, "Create"),
        Activity::Read => (2, "Read"),
        Activity::Update => (3, "Update"),
        Activity::Delete => (4, "Delete"),
        Activity::Other => (99, "Other"),
    }
}

fn provider(c: Cloud) -> &'static str {
    match c {
        Cloud::Aws => "AWS",
        Cloud::Gcp => "GCP",
        Cloud::Azure => "Azure",
    }
}

/// One event as OCSF.
pub fn event(e: &AuditEvent) -> Value {
    let mut user = json!({
        "uid": e.principal.id,
        "name": e.principal.id.rsplit(['/', ':']).next().unwrap_or(&e.principal.id),
        "type": e.principal.kind,
    });
    if let Some(a) = &e.principal.account {
        user["account"] = json!({"uid": a});
    }
    if let Some(k) = &e.principal.access_key {
        user["credential_uid"] = json!(k);
    }
    let mut src = json!({});
    if let Some(ip) = e.source_ip {
        src["ip"] = json!(ip.to_string());
    } else if !e.source.is_empty() {
        src["svc_name"] = json!(e.source);
    }
    let mut cloud = json!({"provider": provider(e.cloud), "account": {"uid": e.account}});
    if let Some(r) = &e.region {
        cloud["region"] = json!(r);
    }
    let (status_id, status) = if e.success {
        (1, "Success")
    } else {
        (2, "Failure")
    };
    let metadata = json!({
        "version": OCSF_VERSION,
        "product": {"name": "Cordon", "vendor_name": "Cordon"},
        "log_name": e.cloud.as_str(),
        "uid": e.event_id,
        // `api` and `cloud` come with the cloud profile.
        "profiles": ["cloud"],
    });
    let mut out = if e.is_sign_in() {
        let mut auth = json!({
            "class_uid": 3002,
            "class_name": "Authentication",
            "category_uid": 3,
            "category_name": "Identity & Access Management",
            "activity_id": 1,
            "activity_name": "Logon",
            "type_uid": 300_201,
            "type_name": "Authentication: Logon",
            "user": user,
            "is_remote": true,
            // What was signed in to: the cloud's console or identity
            // service.
            "service": {"name": if e.service.is_empty() { e.cloud.as_str() } else { e.service.as_str() }},
        });
        if let Some(mfa) = e.principal.mfa {
            auth["is_mfa"] = json!(mfa);
        }
        auth
    } else {
        let (id, name) = activity(&e.action);
        let mut api = json!({
            "operation": e.action,
            "service": {"name": e.service},
        });
        if let Some(r) = &e.request_id {
            api["request"] = json!({"uid": r});
        }
        let mut actor = json!({"user": user});
        if e.principal.session.is_some() || e.principal.role.is_some() {
            actor["session"] = json!({
                "uid": e.principal.session,
                "issuer": e.principal.role,
                "is_mfa": e.principal.mfa,
            });
        }
        let mut a = json!({
            "class_uid": 6003,
            "class_name": "API Activity",
            "category_uid": 6,
            "category_name": "Application Activity",
            "activity_id": id,
            "activity_name": name,
            "type_uid": 600_300 + id,
            "type_name": format!("API Activity: {name}"),
            "api": api,
            "actor": actor,
        });
        if !e.resources.is_empty() {
            a["resources"] = Value::Array(e.resources.iter().map(|r| json!({"uid": r})).collect());
        }
        a
    };
    out["severity_id"] = json!(1);
    out["severity"] = json!("Informational");
    out["time"] = json!(e.time_ms);
    out["status_id"] = json!(status_id);
    out["status"] = json!(status);
    if let Some(err) = &e.error {
        out["status_code"] = json!(err);
    }
    out["src_endpoint"] = src;
    if !e.user_agent.is_empty() {
        out["http_request"] = json!({"user_agent": e.user_agent});
    }
    out["cloud"] = cloud;
    out["metadata"] = metadata;
    out
}
