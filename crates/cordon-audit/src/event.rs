//! The normalised audit event.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Which cloud an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// AWS (CloudTrail).
    Aws,
    /// Google Cloud (Cloud Audit Logs).
    Gcp,
    /// Azure (Activity Log, Entra ID).
    Azure,
}

impl Cloud {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Gcp => "gcp",
            Cloud::Azure => "azure",
        }
    }
}

/// The account CloudTrail names for a caller that signed nothing.
pub const ANONYMOUS: &str = "ANONYMOUS_PRINCIPAL";

/// Who made the call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The kind (`IAMUser`, `AssumedRole`, `Root`, `AWSService`,
    /// `serviceAccount`, `user`, `servicePrincipal`...).
    pub kind: String,
    /// Its identifier: an ARN, an email, an object id.
    pub id: String,
    /// The account, project or tenant the principal belongs to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub account: Option<String>,
    /// For an assumed role: the role's ARN (the session's issuer).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
    /// For an assumed role: the session name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session: Option<String>,
    /// The identity that assumed the role, when the cloud records it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_identity: Option<String>,
    /// Whether the session was authenticated with MFA, when recorded.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mfa: Option<bool>,
    /// The access key used, when recorded.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub access_key: Option<String>,
}

/// What the policy says about an audit event: the groups (and vendor)
/// whose identities made the call, and the workload and groups of the
/// address it came from, as flows are enriched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventContext {
    /// Groups naming the principal (its id, role, account or project).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub groups: Vec<String>,
    /// The vendor of the first such group that is a vendor.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vendor: Option<String>,
    /// The vendor group's declared address ranges, when it declares any
    /// (the policy's; not written out).
    #[serde(skip)]
    pub declared: Vec<ipnet::IpNet>,
    /// The workload at the source address (an instance profile's or a
    /// workload identity's calls come from their workload).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workload: Option<String>,
    /// Groups of the source address.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub source_groups: Vec<String>,
    /// Groups of the resources acted on (a bucket by its host names).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub resource_groups: Vec<String>,
    /// Data categories those groups say the resources hold.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub data: Vec<String>,
}

impl EventContext {
    /// Whether the call came from outside the ranges its vendor group
    /// declares: `None` when no ranges are declared or the source is no
    /// address.
    pub fn outside_declared(&self, source: Option<std::net::IpAddr>) -> Option<bool> {
        let ip = source?;
        (!self.declared.is_empty()).then(|| !self.declared.iter().any(|n| n.contains(&ip)))
    }
}

/// What an event's record says beyond the normalised fields (the request's
/// parameters, what the cloud added), as a JSON object. Read from a log,
/// it is kept as the record's text and parsed the first time a detector
/// asks: most events are stored and never looked into.
#[derive(Default)]
pub struct Detail {
    /// The object's text, when not parsed yet.
    text: Option<Box<str>>,
    value: std::sync::OnceLock<serde_json::Value>,
}

impl Detail {
    /// Detail as a parsed value.
    pub fn from_value(value: serde_json::Value) -> Detail {
        Detail {
            text: None,
            value: std::sync::OnceLock::from(value),
        }
    }

    /// Detail as a JSON object's text, parsed when first read (text that
    /// does not parse reads as no detail).
    pub fn from_text(text: String) -> Detail {
        Detail {
            text: Some(text.into_boxed_str()),
            value: std::sync::OnceLock::new(),
        }
    }

    /// The detail (`Null` when there is none).
    pub fn value(&self) -> &serde_json::Value {
        self.value.get_or_init(|| {
            self.text
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(serde_json::Value::Null)
        })
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.text.is_none() && self.value.get().is_none_or(serde_json::Value::is_null)
    }
}

impl Clone for Detail {
    fn clone(&self) -> Self {
        match (self.value.get(), &self.text) {
            (Some(v), _) => Detail::from_value(v.clone()),
            (None, Some(t)) => Detail::from_text(t.to_string()),
            (None, None) => Detail::default(),
        }
    }
}

impl PartialEq for Detail {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl std::fmt::Debug for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

impl Serialize for Detail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Detail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(Detail::from_value)
    }
}

impl From<serde_json::Value> for Detail {
    fn from(value: serde_json::Value) -> Self {
        Detail::from_value(value)
    }
}

/// What an operation does, told by its verb (`GetObject`,
/// `storage.objects.get`, `.../listKeys/action`): OCSF's API activities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Creates something.
    Create,
    /// Only reads.
    Read,
    /// Changes something.
    Update,
    /// Deletes something.
    Delete,
    /// None of these, as far as the verb tells.
    Other,
}

impl Activity {
    /// The activity of an operation, from its verb.
    pub fn of(action: &str) -> Activity {
        // The verb: `GetObject`, `storage.objects.get`, `.../listKeys/action`.
        let last = action
            .rsplit(['.', '/'])
            .find(|p| !p.eq_ignore_ascii_case("action"))
            .unwrap_or(action);
        let verb = last.to_ascii_lowercase();
        let starts = |words: &[&str]| words.iter().any(|w| verb.starts_with(w));
        if starts(&[
            "get", "list", "describe", "head", "lookup", "read", "search", "query", "batchget",
            "select",
        ]) {
            Activity::Read
        } else if starts(&[
            "create", "add", "insert", "run", "attach", "register", "import", "generate", "copy",
            "upload", "publish", "send",
        ]) {
            Activity::Create
        } else if starts(&[
            "delete",
            "remove",
            "detach",
            "deregister",
            "terminate",
            "revoke",
            "purge",
        ]) {
            Activity::Delete
        } else if starts(&[
            "put",
            "update",
            "modify",
            "set",
            "patch",
            "enable",
            "disable",
            "stop",
            "start",
            "associate",
            "disassociate",
            "write",
            "change",
            "reset",
            "assume",
            "tag",
            "untag",
        ]) {
            Activity::Update
        } else {
            Activity::Other
        }
    }
}

/// One cloud audit event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When the call was made, milliseconds since the epoch.
    pub time_ms: i64,
    /// The cloud.
    pub cloud: Cloud,
    /// The account, project or subscription the call was made in.
    pub account: String,
    /// The region or location, when given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub region: Option<String>,
    /// Who made the call.
    pub principal: Principal,
    /// Where from: the caller's address when it is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_ip: Option<IpAddr>,
    /// Where from, as recorded (an address, or a service name such as
    /// `ec2.amazonaws.com` for calls made by a cloud service).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub source: String,
    /// The user agent.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub user_agent: String,
    /// The service called (`s3`, `iam`, `storage.googleapis.com`,
    /// `Microsoft.Storage`).
    pub service: String,
    /// The operation (`GetObject`, `storage.objects.get`,
    /// `Microsoft.Storage/storageAccounts/listKeys/action`).
    pub action: String,
    /// Resources acted on (ARNs, resource names, ids).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub resources: Vec<String>,
    /// The accounts owning those resources, as far as the record names
    /// them (CloudTrail's `resources[].accountId`), each once.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub resource_accounts: Vec<String>,
    /// Whether the call succeeded.
    pub success: bool,
    /// The error code of a failed call.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Whether the call only reads, when recorded.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub read_only: Option<bool>,
    /// The request id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<String>,
    /// The event's own id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub event_id: Option<String>,
    /// Bytes sent to the caller (storage reads), when recorded.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bytes_out: Option<u64>,
    /// Bytes received from the caller (storage writes), when recorded.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bytes_in: Option<u64>,
    /// The request's parameters and what the cloud added
    /// (`requestParameters`, `additionalEventData`, `responseElements`,
    /// `serviceEventDetails`; the GCP request; the Azure properties), as
    /// recorded, for the detectors that read them.
    #[serde(skip_serializing_if = "Detail::is_empty", default)]
    pub detail: Detail,
    /// What the policy says about the call, when the event was enriched.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub policy: Option<Box<EventContext>>,
    /// The record as the cloud wrote it, when it was read from a log (the
    /// store keeps it: the original is the evidence, and normalising it
    /// again on reading costs less than writing the normalised form).
    #[serde(skip)]
    pub raw: Option<Box<str>>,
}

impl AuditEvent {
    /// An event of `cloud` at `time_ms` with nothing else known yet.
    pub fn new(cloud: Cloud, time_ms: i64) -> Self {
        AuditEvent {
            time_ms,
            cloud,
            account: String::new(),
            region: None,
            principal: Principal::default(),
            source_ip: None,
            source: String::new(),
            user_agent: String::new(),
            service: String::new(),
            action: String::new(),
            resources: Vec::new(),
            resource_accounts: Vec::new(),
            success: true,
            error: None,
            read_only: None,
            request_id: None,
            event_id: None,
            bytes_out: None,
            bytes_in: None,
            detail: Detail::default(),
            policy: None,
            raw: None,
        }
    }

    /// The value at a `/`-separated path in [`AuditEvent::detail`]
    /// (`requestParameters/bucketName`).
    pub fn detail_at(&self, path: &str) -> Option<&serde_json::Value> {
        path.split('/')
            .try_fold(self.detail.value(), |v, key| v.get(key))
            .filter(|v| !v.is_null())
    }

    /// The text at a path in [`AuditEvent::detail`].
    pub fn detail_str(&self, path: &str) -> Option<&str> {
        self.detail_at(path).and_then(serde_json::Value::as_str)
    }

    /// Whether the event is a sign-in (an AWS console login, a Google
    /// login, an Entra ID sign-in).
    pub fn is_sign_in(&self) -> bool {
        match self.cloud {
            Cloud::Aws => self.action == "ConsoleLogin",
            Cloud::Gcp => self.action.starts_with("google.login.LoginService.login"),
            Cloud::Azure => self
                .detail_str("category")
                .is_some_and(|c| c.ends_with("SignInLogs")),
        }
    }

    /// Whether the call only reads: as the record says (CloudTrail's
    /// `readOnly`), else by its operation's verb, as OCSF's activity is
    /// told (`storage.objects.list`, `ListServiceAccounts`, `.../read`).
    pub fn reads_only(&self) -> bool {
        self.read_only
            .unwrap_or_else(|| Activity::of(&self.action) == Activity::Read)
    }

    /// Whether the call carried no credentials at all: S3's anonymous
    /// principal, a storage request Azure logs as `Anonymous`, a Cloud
    /// Storage call with no principal. Such calls reach only what is open
    /// to anyone.
    pub fn unauthenticated(&self) -> bool {
        match self.cloud {
            Cloud::Aws => self.principal.account.as_deref() == Some(ANONYMOUS),
            // The reader calls a principal with no email `anonymous`.
            Cloud::Gcp => {
                self.principal.kind == "anonymous" && self.service.starts_with("storage.")
            }
            Cloud::Azure => self
                .detail_str("auth")
                .is_some_and(|a| a.eq_ignore_ascii_case("anonymous")),
        }
    }

    /// A short reference for evidence: time, action, principal, source.
    pub fn reference(&self) -> serde_json::Value {
        serde_json::json!({
            "time_ms": self.time_ms,
            "cloud": self.cloud.as_str(),
            "account": self.account,
            "action": format!("{}:{}", self.service, self.action),
            "principal": self.principal.id,
            "source": self.source,
            "success": self.success,
            "event_id": self.event_id,
            "request_id": self.request_id,
        })
    }
}
