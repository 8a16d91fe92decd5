//! Azure Activity Log, resource logs and Entra ID sign-in and audit logs
//! (the Azure Monitor diagnostic format) into [`AuditEvent`]s. Exports
//! differ in the case of their keys (`callerIpAddress`,
//! `calleripaddress`): keys are matched without regard to case.

use serde_json::{Map, Value};

use crate::event::{AuditEvent, Cloud, Principal};

/// The value of `key` in `v`, matched without regard to case.
fn get<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    let map = v?.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn text<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    get(v, key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Whether `record` is an Azure Monitor record: an operation, a time and
/// where it happened (a resource id, a tenant or a category).
pub fn is_record(record: &Value) -> bool {
    let r = Some(record);
    get(r, "operationName").is_some()
        && get(r, "time").is_some()
        && (get(r, "resourceId").is_some()
            || get(r, "tenantId").is_some()
            || get(r, "category").is_some())
}

/// Normalise one record.
///
/// # Errors
/// What makes it no event (no time, no operation).
pub fn normalise(r: &Value) -> Result<AuditEvent, String> {
    let root = Some(r);
    let time = text(root, "time").ok_or("no `time`")?;
    let time_ms = crate::parse_time(time).ok_or_else(|| {
        format!(
            "`time` is not a time: `{}`",
            time.chars().take(40).collect::<String>()
        )
    })?;
    let operation = match get(root, "operationName") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => text(Some(v), "value").unwrap_or_default().to_string(),
        None => String::new(),
    };
    if operation.is_empty() {
        return Err("no `operationName`".into());
    }
    let props = get(root, "properties");
    let mut e = AuditEvent::new(Cloud::Azure, time_ms);
    e.action = operation;
    let resource = text(root, "resourceId").unwrap_or_default();
    // The provider (`Microsoft.Storage`) names the service; Entra ID's
    // records name their category.
    e.service = resource
        .split('/')
        .skip_while(|p| !p.eq_ignore_ascii_case("providers"))
        .nth(1)
        .map(str::to_string)
        .or_else(|| text(root, "category").map(str::to_string))
        .unwrap_or_default();
    let mut parts = resource.split('/');
    e.account = std::iter::from_fn(|| parts.next())
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0].eq_ignore_ascii_case("subscriptions"))
        .map(|w| w[1].to_string())
        .or_else(|| text(root, "tenantId").map(str::to_string))
        .unwrap_or_default();
    e.region = text(root, "location").map(str::to_string);
    if !resource.is_empty() {
        e.resources.push(resource.to_string());
    }
    if let Some(key) = text(props, "objectKey") {
        e.resources.push(key.to_string());
    }
    let caller = text(root, "callerIpAddress")
        .or_else(|| text(props, "ipAddress"))
        .unwrap_or_default();
    e.source = caller.to_string();
    e.source_ip = crate::address(caller).or_else(|| {
        // `5.5.5.5:28915`, `[2001:db8::1]:443`
        caller
            .rsplit_once(':')
            .and_then(|(ip, _)| crate::address(ip.trim_matches(['[', ']'])))
    });
    e.user_agent = text(props, "userAgent")
        .or_else(|| text(props, "userAgentHeader"))
        .unwrap_or_default()
        .to_string();
    let claims = get(get(root, "identity"), "claims");
    let initiated = get(get(props, "initiatedBy"), "user");
    let app = get(get(props, "initiatedBy"), "app");
    let upn = text(props, "userPrincipalName")
        .or_else(|| text(initiated, "userPrincipalName"))
        .or_else(|| {
            text(
                claims,
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
            )
        })
        .or_else(|| {
            text(
                claims,
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            )
        })
        .or_else(|| text(claims, "name"))
        .or_else(|| text(get(root, "identity"), "caller"))
        .or_else(|| text(root, "caller"));
    let sp = text(props, "servicePrincipalName")
        .or_else(|| text(props, "servicePrincipalId"))
        .or_else(|| text(app, "displayName"))
        .or_else(|| text(app, "servicePrincipalId"));
    e.principal = match (upn, sp) {
        (Some(u), _) => Principal {
            kind: "user".into(),
            id: u.to_string(),
            ..Principal::default()
        },
        (None, Some(s)) => Principal {
            kind: "servicePrincipal".into(),
            id: s.to_string(),
            ..Principal::default()
        },
        (None, None) => Principal {
            kind: "unknown".into(),
            id: text(props, "accountName").unwrap_or_default().to_string(),
            ..Principal::default()
        },
    };
    e.principal.account = text(root, "tenantId").map(str::to_string);
    // Success: Entra's status, then the result type or signature.
    let status_code = get(get(props, "status"), "errorCode").and_then(|v| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    // Storage logs: the HTTP status and its text (`Success`,
    // `AnonymousSuccess`, `AuthorizationFailure`, `ClientOtherError`).
    let http_failed = match get(root, "statusCode") {
        Some(Value::Number(n)) => n.as_u64().is_some_and(|c| c >= 400),
        Some(Value::String(s)) => s.parse::<u16>().is_ok_and(|c| c >= 400),
        _ => false,
    };
    let result = text(root, "resultType")
        .or_else(|| text(root, "statusText"))
        .or_else(|| text(root, "resultSignature"))
        .or_else(|| text(props, "result"))
        .or_else(|| text(props, "metricResponseType"));
    let failed = http_failed
        || match status_code {
            Some(code) => code != 0,
            None => result.is_some_and(|r| {
                let r = r.to_ascii_lowercase();
                r.contains("fail")
                    || r.contains("error")
                    || r.contains("denied")
                    || r == "interrupted"
            }),
        };
    if failed {
        e.success = false;
        e.error = Some(
            status_code
                .map(|c| c.to_string())
                .or_else(|| result.map(str::to_string))
                .unwrap_or_default(),
        );
    }
    e.event_id = text(props, "id").map(str::to_string);
    e.request_id = text(root, "correlationId").map(str::to_string);
    let mut detail = Map::new();
    if let Some(c) = text(root, "category") {
        detail.insert("category".into(), Value::String(c.to_string()));
    }
    if let Some(p) = props.filter(|p| !p.is_null()) {
        detail.insert("properties".into(), p.clone());
    }
    // Storage logs: how the caller authenticated (`SAS`, `AccountKey`,
    // `OAuth`, `Anonymous`) and the address it asked for, without the
    // signature.
    if let Some(kind) = text(get(root, "identity"), "type") {
        detail.insert("auth".into(), Value::String(kind.to_string()));
    }
    if let Some(uri) = text(root, "uri") {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let signed = query.split('&').any(|kv| kv.starts_with("sig="));
        detail.insert(
            "uri".into(),
            Value::String(path.chars().take(512).collect()),
        );
        if signed {
            detail.insert("signed_uri".into(), Value::Bool(true));
        }
    }
    if !detail.is_empty() {
        e.detail = Value::Object(detail).into();
    }
    Ok(e)
}
