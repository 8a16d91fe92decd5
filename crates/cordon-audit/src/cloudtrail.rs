//! AWS CloudTrail records into [`AuditEvent`]s: management and data
//! events, console sign-ins, assumed-role sessions with their issuer, MFA
//! and source identity, S3 bytes.
//!
//! A record is read one of two ways and built by one function
//! ([`build`]): straight into typed fields borrowing from the record's
//! text ([`normalise_text`], the fast way: no tree of maps for the parts
//! nothing reads), or from a parsed JSON value ([`normalise`]), which
//! takes any shape a record may have. What the detectors read of the
//! request and the response (the [`DETAIL`] parts) is kept as JSON
//! values either way.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::event::{ANONYMOUS, AuditEvent, Cloud, Principal};

/// Whether `record` looks like a CloudTrail event (an event name and the
/// service that logged it).
pub fn is_record(record: &Value) -> bool {
    record.get("eventName").is_some()
        && (record.get("eventSource").is_some() || record.get("eventVersion").is_some())
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A flag CloudTrail writes as a boolean or as `"true"`/`"false"`.
fn flag_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
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

/// What an event is built from, however the record was read. Text fields
/// are `None` when absent or empty.
#[derive(Default)]
struct Fields<'a> {
    version: Option<&'a str>,
    time: Option<&'a str>,
    name: Option<&'a str>,
    source: Option<&'a str>,
    region: Option<&'a str>,
    ip: Option<&'a str>,
    agent: Option<&'a str>,
    request_id: Option<&'a str>,
    event_id: Option<&'a str>,
    read_only: Option<bool>,
    recipient: Option<&'a str>,
    error_code: Option<&'a str>,
    resources: Vec<&'a str>,
    /// The accounts the resources belong to.
    owners: Vec<&'a str>,
    identity: IdentityFields<'a>,
    /// From the detail: `requestParameters.bucketName` and `.key`.
    bucket: Option<&'a str>,
    key: Option<&'a str>,
    /// `responseElements.ConsoleLogin`.
    console_login: Option<&'a str>,
    /// `additionalEventData`: bytes out and in, `MFAUsed`.
    bytes_out: Option<u64>,
    bytes_in: Option<u64>,
    mfa_used: Option<&'a str>,
}

/// `userIdentity`, as [`Fields`].
#[derive(Default)]
struct IdentityFields<'a> {
    kind: Option<&'a str>,
    arn: Option<&'a str>,
    principal_id: Option<&'a str>,
    invoked_by: Option<&'a str>,
    account: Option<&'a str>,
    access_key: Option<&'a str>,
    user_name: Option<&'a str>,
    issuer: Option<&'a str>,
    source_identity: Option<&'a str>,
    mfa: Option<bool>,
}

/// A count CloudTrail writes as a number or as text.
fn count_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The fields of a record parsed as a JSON value, whose [`DETAIL`] parts
/// are `detail`.
fn fields_of<'a>(r: &'a Value, detail: &'a Map<String, Value>) -> Fields<'a> {
    let identity = r.get("userIdentity").unwrap_or(&Value::Null);
    let context = identity.get("sessionContext");
    let params = detail.get("requestParameters");
    let extra = detail.get("additionalEventData");
    Fields {
        bucket: params.and_then(|p| text(p, "bucketName")),
        key: params.and_then(|p| text(p, "key")),
        console_login: detail
            .get("responseElements")
            .and_then(|v| text(v, "ConsoleLogin")),
        bytes_out: extra
            .and_then(|x| x.get("bytesTransferredOut"))
            .and_then(count_of),
        bytes_in: extra
            .and_then(|x| x.get("bytesTransferredIn"))
            .and_then(count_of),
        mfa_used: extra.and_then(|x| text(x, "MFAUsed")),
        version: text(r, "eventVersion"),
        time: text(r, "eventTime"),
        name: text(r, "eventName"),
        source: text(r, "eventSource"),
        region: text(r, "awsRegion"),
        ip: text(r, "sourceIPAddress"),
        agent: text(r, "userAgent"),
        request_id: text(r, "requestID"),
        event_id: text(r, "eventID"),
        read_only: r.get("readOnly").and_then(flag_of),
        recipient: text(r, "recipientAccountId"),
        error_code: text(r, "errorCode"),
        resources: r
            .get("resources")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|x| text(x, "ARN").or_else(|| text(x, "arn")))
                    .collect()
            })
            .unwrap_or_default(),
        owners: r
            .get("resources")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(|x| text(x, "accountId")).collect())
            .unwrap_or_default(),
        identity: IdentityFields {
            kind: text(identity, "type"),
            arn: text(identity, "arn"),
            principal_id: text(identity, "principalId"),
            invoked_by: text(identity, "invokedBy"),
            account: text(identity, "accountId"),
            access_key: text(identity, "accessKeyId"),
            user_name: text(identity, "userName"),
            issuer: context
                .and_then(|c| c.get("sessionIssuer"))
                .and_then(|i| text(i, "arn")),
            source_identity: context.and_then(|c| text(c, "sourceIdentity")),
            mfa: context
                .and_then(|c| c.get("attributes"))
                .and_then(|a| a.get("mfaAuthenticated"))
                .and_then(flag_of),
        },
    }
}

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
    let event = build(&fields_of(r, &detail));
    event.map(|e| with_detail(e, detail))
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
    let event = build(&fields_of(&r, &detail));
    event.map(|e| with_detail(e, detail))
}

/// `e` with `detail` (when there is any) as its detail.
fn with_detail(mut e: AuditEvent, detail: Map<String, Value>) -> AuditEvent {
    if !detail.is_empty() {
        e.detail = Value::Object(detail).into();
    }
    e
}

/// A value read only as far as a field needs it: a flag, a text, or
/// anything else (passed over without building it).
enum Scalar<'de> {
    Flag(bool),
    Text(Cow<'de, str>),
    Other,
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Flag(b))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(Cow::Owned(s.to_string())))
            }
            fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Scalar<'de>, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Scalar<'de>, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A flag written as a boolean or a string; anything else is no flag.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Scalar::deserialize(d)? {
        Scalar::Flag(b) => Some(b),
        Scalar::Text(s) => s.parse().ok(),
        Scalar::Other => None,
    })
}

/// Text, when the value is a string; anything else is no text.
fn loose_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(match Scalar::deserialize(d)? {
        Scalar::Text(s) => Some(s),
        _ => None,
    })
}

/// Text that is absent when empty.
fn some<'a>(s: &'a Option<Cow<'_, str>>) -> Option<&'a str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A record read straight into the fields [`build`] takes. Unknown keys
/// are passed over without building anything; a key of an unexpected
/// type fails the read, and the record is then read as a JSON value.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Typed<'a> {
    #[serde(borrow)]
    event_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "sourceIPAddress")]
    source_ip_address: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "requestID")]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventID")]
    event_id: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "flag")]
    read_only: Option<bool>,
    #[serde(borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resources: Option<Vec<TypedResource<'a>>>,
    #[serde(borrow)]
    user_identity: Option<TypedIdentity<'a>>,
    #[serde(borrow)]
    request_parameters: Option<&'a RawValue>,
    #[serde(borrow)]
    response_elements: Option<&'a RawValue>,
    #[serde(borrow)]
    additional_event_data: Option<&'a RawValue>,
    #[serde(borrow)]
    service_event_details: Option<&'a RawValue>,
    #[serde(borrow)]
    error_message: Option<&'a RawValue>,
    #[serde(borrow)]
    event_type: Option<&'a RawValue>,
    #[serde(borrow, rename = "sharedEventID")]
    shared_event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    vpc_endpoint_id: Option<&'a RawValue>,
}

/// A count written as a number or as text; anything else is no count.
fn loose_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(count_of(&Value::deserialize(d)?))
}

/// The parts of `requestParameters` the event is built from.
#[derive(Deserialize)]
struct TypedParams<'a> {
    #[serde(
        borrow,
        default,
        rename = "bucketName",
        deserialize_with = "loose_text"
    )]
    bucket: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "loose_text")]
    key: Option<Cow<'a, str>>,
}

/// The part of `responseElements` the event is built from.
#[derive(Deserialize)]
struct TypedResponse<'a> {
    #[serde(
        borrow,
        default,
        rename = "ConsoleLogin",
        deserialize_with = "loose_text"
    )]
    console_login: Option<Cow<'a, str>>,
}

/// The parts of `additionalEventData` the event is built from.
#[derive(Deserialize)]
struct TypedExtra<'a> {
    #[serde(
        default,
        rename = "bytesTransferredOut",
        deserialize_with = "loose_count"
    )]
    bytes_out: Option<u64>,
    #[serde(
        default,
        rename = "bytesTransferredIn",
        deserialize_with = "loose_count"
    )]
    bytes_in: Option<u64>,
    #[serde(borrow, default, rename = "MFAUsed", deserialize_with = "loose_text")]
    mfa_used: Option<Cow<'a, str>>,
}

/// A part of a record read into `T`, when it is an object that reads so.
fn part<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

#[derive(Deserialize)]
struct TypedResource<'a> {
    #[serde(borrow, rename = "ARN")]
    upper: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "accountId")]
    account_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedIdentity<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    principal_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    invoked_by: Option<Cow<'a, str>>,
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    access_key_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    session_context: Option<TypedContext<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedContext<'a> {
    #[serde(borrow)]
    session_issuer: Option<TypedIssuer<'a>>,
    #[serde(borrow)]
    source_identity: Option<Cow<'a, str>>,
    attributes: Option<TypedAttributes>,
}

#[derive(Deserialize)]
struct TypedIssuer<'a> {
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedAttributes {
    #[serde(default, deserialize_with = "flag")]
    mfa_authenticated: Option<bool>,
}

/// Normalise the CloudTrail record whose text is `text`, read straight into
/// typed fields; `None` when it does not read that way or is no CloudTrail
/// record (then read it as a JSON value: [`crate::read::normalise`]).
pub fn normalise_text(text: &str) -> Option<Result<AuditEvent, String>> {
    read_text(text, true)
}

/// [`normalise_text`], or (`full` false) only checked: the event has its
/// time and cloud and nothing else, for a caller that only stores the
/// record (the store keeps the text and normalises it on reading).
pub fn read_text(text: &str, full: bool) -> Option<Result<AuditEvent, String>> {
    let r: Typed<'_> = serde_json::from_str(text).ok()?;
    r.event_name.as_ref()?;
    if r.event_source.is_none() && r.event_version.is_none() {
        return None;
    }
    if !full {
        let fields = Fields {
            version: some(&r.event_version),
            time: some(&r.event_time),
            name: some(&r.event_name),
            ..Fields::default()
        };
        return Some(checked(&fields).map(|(time_ms, _)| AuditEvent::new(Cloud::Aws, time_ms)));
    }
    let identity = r.user_identity.as_ref();
    let context = identity.and_then(|i| i.session_context.as_ref());
    let params: Option<TypedParams<'_>> = part(r.request_parameters);
    let response: Option<TypedResponse<'_>> = part(r.response_elements);
    let extra: Option<TypedExtra<'_>> = part(r.additional_event_data);
    let fields = Fields {
        version: some(&r.event_version),
        time: some(&r.event_time),
        name: some(&r.event_name),
        source: some(&r.event_source),
        region: some(&r.aws_region),
        ip: some(&r.source_ip_address),
        agent: some(&r.user_agent),
        request_id: some(&r.request_id),
        event_id: some(&r.event_id),
        read_only: r.read_only,
        recipient: some(&r.recipient_account_id),
        error_code: some(&r.error_code),
        resources: r
            .resources
            .iter()
            .flatten()
            .filter_map(|x| some(&x.upper).or_else(|| some(&x.arn)))
            .collect(),
        owners: r
            .resources
            .iter()
            .flatten()
            .filter_map(|x| some(&x.account_id))
            .collect(),
        identity: IdentityFields {
            kind: identity.and_then(|i| some(&i.kind)),
            arn: identity.and_then(|i| some(&i.arn)),
            principal_id: identity.and_then(|i| some(&i.principal_id)),
            invoked_by: identity.and_then(|i| some(&i.invoked_by)),
            account: identity.and_then(|i| some(&i.account_id)),
            access_key: identity.and_then(|i| some(&i.access_key_id)),
            user_name: identity.and_then(|i| some(&i.user_name)),
            issuer: context
                .and_then(|c| c.session_issuer.as_ref())
                .and_then(|i| some(&i.arn)),
            source_identity: context.and_then(|c| some(&c.source_identity)),
            mfa: context
                .and_then(|c| c.attributes.as_ref())
                .and_then(|a| a.mfa_authenticated),
        },
        bucket: params.as_ref().and_then(|p| some(&p.bucket)),
        key: params.as_ref().and_then(|p| some(&p.key)),
        console_login: response.as_ref().and_then(|p| some(&p.console_login)),
        bytes_out: extra.as_ref().and_then(|x| x.bytes_out),
        bytes_in: extra.as_ref().and_then(|x| x.bytes_in),
        mfa_used: extra.as_ref().and_then(|x| some(&x.mfa_used)),
    };
    let event = build(&fields);
    // The detail stays text until a detector reads it.
    let parts = [
        r.request_parameters,
        r.response_elements,
        r.additional_event_data,
        r.service_event_details,
        r.error_message,
        r.event_type,
        r.shared_event_id,
        r.vpc_endpoint_id,
    ];
    let size: usize = parts.iter().flatten().map(|p| p.get().len() + 24).sum();
    let mut text = String::with_capacity(size + 2);
    for (k, v) in DETAIL.into_iter().zip(parts) {
        if let Some(v) = v.filter(|v| v.get() != "null") {
            text.push(if text.is_empty() { '{' } else { ',' });
            text.push('"');
            text.push_str(k);
            text.push_str("\":");
            text.push_str(v.get());
        }
    }
    Some(event.map(|mut e| {
        if !text.is_empty() {
            text.push('}');
            e.detail = crate::Detail::from_text(text);
        }
        e
    }))
}

/// What makes a record an event at all: a version this reader knows, a
/// time, an action. The time (ms) and the action.
fn checked<'a>(r: &Fields<'a>) -> Result<(i64, &'a str), String> {
    if let Some(v) = r.version
        && v != "1"
        && !v.starts_with("1.")
    {
        return Err(format!(
            "CloudTrail event version `{}` is not one this reader knows (1.x)",
            v.chars().take(16).collect::<String>()
        ));
    }
    let time = r.time.ok_or("no `eventTime`")?;
    let time_ms = crate::parse_time(time).ok_or_else(|| {
        format!(
            "`eventTime` is not a time: `{}`",
            time.chars().take(40).collect::<String>()
        )
    })?;
    let action = r.name.ok_or("no `eventName`")?;
    Ok((time_ms, action))
}

/// The event of a record whose fields are `r` (its detail is the caller's
/// to attach).
fn build(r: &Fields<'_>) -> Result<AuditEvent, String> {
    let (time_ms, action) = checked(r)?;
    let mut e = AuditEvent::new(Cloud::Aws, time_ms);
    e.action = action.to_string();
    e.service = r
        .source
        .map(|s| s.strip_suffix(".amazonaws.com").unwrap_or(s).to_string())
        .unwrap_or_default();
    e.region = r.region.map(str::to_string);
    e.source = r.ip.unwrap_or_default().to_string();
    e.source_ip = crate::address(&e.source);
    e.user_agent = r.agent.unwrap_or_default().to_string();
    e.request_id = r.request_id.map(str::to_string);
    e.event_id = r.event_id.map(str::to_string);
    e.read_only = r.read_only;
    e.principal = principal(&r.identity);
    // The event's account is the recipient's. A caller of another account
    // (`AWSAccount`) or with no credentials is not in it: its account is
    // no stand-in.
    let outside = e.principal.kind == "AWSAccount";
    e.account = r
        .recipient
        .or(e
            .principal
            .account
            .as_deref()
            .filter(|a| !outside && *a != ANONYMOUS))
        .unwrap_or_default()
        .to_string();
    let login_failed = r.console_login == Some("Failure");
    e.error = r
        .error_code
        .map(str::to_string)
        .or_else(|| login_failed.then(|| "Failure".to_string()));
    e.success = e.error.is_none();
    e.resources = r.resources.iter().map(|s| (*s).to_string()).collect();
    for owner in &r.owners {
        if !e.resource_accounts.iter().any(|a| a == owner) {
            e.resource_accounts.push((*owner).to_string());
        }
    }
    if let Some(bucket) = r.bucket {
        let arn = match r.key {
            Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
            None => format!("arn:aws:s3:::{bucket}"),
        };
        if !e.resources.contains(&arn) {
            e.resources.push(arn);
        }
    }
    e.bytes_out = r.bytes_out;
    e.bytes_in = r.bytes_in;
    if e.action == "ConsoleLogin"
        && let Some(mfa) = r.mfa_used
    {
        e.principal.mfa = Some(mfa == "Yes");
    }
    Ok(e)
}

fn principal(identity: &IdentityFields<'_>) -> Principal {
    let mut p = Principal {
        kind: identity.kind.unwrap_or("Unknown").to_string(),
        id: identity
            .arn
            .or(identity.principal_id)
            .or(identity.invoked_by)
            .or(identity.user_name)
            .unwrap_or_default()
            .to_string(),
        account: identity.account.map(str::to_string),
        access_key: identity.access_key.map(str::to_string),
        role: identity.issuer.map(str::to_string),
        source_identity: identity.source_identity.map(str::to_string),
        mfa: identity.mfa,
        ..Principal::default()
    };
    if p.kind == "AssumedRole" {
        // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
        p.session = p.id.rsplit_once('/').map(|(_, s)| s.to_string());
    }
    p
}
