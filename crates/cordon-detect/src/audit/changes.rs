//! Security-relevant changes to a cloud account that no sharper rule
//! judged: the configuration changes the CIS AWS Foundations monitoring
//! section asks to watch (network perimeter, IAM, logging and monitoring,
//! keys), plus traffic mirroring, snapshots and restores, administration
//! commands sent to instances, function code and data destroyed; and their
//! Azure counterparts (network security groups and firewalls, run commands,
//! automation runbooks, locks and storage settings, vault secrets, keys
//! listed, deletions and purges) and GCP's (IAM policies, service accounts,
//! firewalls and routes, instance metadata, snapshots, key destruction,
//! functions, log sinks). Each is
//! `low` alone: administrators make them every day, so each identity is
//! told once a day per kind of change, and the incident decides what they
//! mean next to the rest of a path.

use cordon_audit::{AuditEvent, Cloud};
use cordon_core::FindingKind;
use serde_json::Value;

use super::{LOW, audit_finding, from, who};
use crate::detectors::{calibrate, fact};
use crate::finding::{Finding, Severity};

/// A kind of change: what it is called, the stage it belongs to and its
/// technique.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Change {
    pub what: &'static str,
    pub stage: &'static str,
    pub technique: &'static str,
    /// The kind of finding it makes.
    pub kind: FindingKind,
}

const NETWORK: Change = Change {
    what: "network perimeter changed",
    stage: "defense-evasion",
    technique: "T1562.007",
    kind: FindingKind::CloudConfigChange,
};
const MIRROR: Change = Change {
    what: "traffic mirroring set up or changed",
    stage: "collection",
    technique: "T1040",
    kind: FindingKind::CloudConfigChange,
};
const IAM: Change = Change {
    what: "identities or permissions changed",
    stage: "persistence",
    technique: "T1098",
    kind: FindingKind::CloudConfigChange,
};
const NEW_IDENTITY: Change = Change {
    what: "a cloud identity created",
    stage: "persistence",
    technique: "T1136.003",
    kind: FindingKind::CloudConfigChange,
};
const MONITORING: Change = Change {
    what: "logging or monitoring changed",
    stage: "defense-evasion",
    technique: "T1562.008",
    kind: FindingKind::CloudConfigChange,
};
const GUARDRAIL: Change = Change {
    what: "a guardrail or protection changed",
    stage: "defense-evasion",
    technique: "T1562.001",
    kind: FindingKind::CloudConfigChange,
};
const DESTROYED: Change = Change {
    what: "keys, data or backups destroyed or scheduled for deletion",
    stage: "impact",
    technique: "T1485",
    kind: FindingKind::CloudConfigChange,
};
const RECOVERY: Change = Change {
    what: "backups or recovery points deleted",
    stage: "impact",
    technique: "T1490",
    kind: FindingKind::CloudConfigChange,
};
const SNAPSHOT: Change = Change {
    what: "a snapshot or image taken or copied",
    stage: "defense-evasion",
    technique: "T1578.001",
    kind: FindingKind::CloudConfigChange,
};
const RESTORE: Change = Change {
    what: "an instance or database restored, created or changed",
    stage: "defense-evasion",
    technique: "T1578.002",
    kind: FindingKind::CloudConfigChange,
};
const COMMAND: Change = Change {
    what: "a command or session sent to an instance",
    stage: "execution",
    technique: "T1651",
    kind: FindingKind::CloudConfigChange,
};
const REMOTE: Change = Change {
    what: "an SSH key pushed to an instance or its serial console",
    stage: "lateral-movement",
    technique: "T1021.007",
    kind: FindingKind::CloudConfigChange,
};
const FUNCTION: Change = Change {
    what: "a function created, changed or deleted",
    stage: "execution",
    technique: "T1648",
    kind: FindingKind::CloudConfigChange,
};
const DISK_LINK: Change = Change {
    what: "a download link to a disk generated",
    stage: "collection",
    technique: "T1530",
    kind: FindingKind::CloudConfigChange,
};
const KEYS_LISTED: Change = Change {
    what: "storage account keys listed",
    stage: "credential-access",
    technique: "T1552",
    kind: FindingKind::CloudConfigChange,
};
const VAULT_READ: Change = Change {
    what: "vault secrets, keys or certificates read or recovered",
    stage: "credential-access",
    technique: "T1555.006",
    kind: FindingKind::CloudConfigChange,
};
const REGION: Change = Change {
    what: "a region enabled",
    stage: "defense-evasion",
    technique: "T1535",
    kind: FindingKind::CloudConfigChange,
};
const INSTANCE_DELETED: Change = Change {
    what: "instances terminated",
    stage: "defense-evasion",
    technique: "T1578.003",
    kind: FindingKind::CloudConfigChange,
};
const HIJACK: Change = Change {
    what: "accelerated (GPU) instances launched",
    stage: "impact",
    technique: "T1496",
    kind: FindingKind::CloudConfigChange,
};
const ROOT: Change = Change {
    what: "the account's root user used",
    stage: "initial-access",
    technique: "T1078.004",
    kind: FindingKind::CloudConfigChange,
};

/// Calls that read or reach something an intruder looks for, rare in an
/// identity's daily work: `low`, told once a day per identity and kind,
/// like the changes.
const ACCOUNT_READ: Change = Change {
    what: "the account's organisation or contact details read",
    stage: "discovery",
    technique: "T1087.004",
    kind: FindingKind::CloudDiscovery,
};
const EMAIL_READ: Change = Change {
    what: "email sending limits, status or sender identities read",
    stage: "discovery",
    technique: "T1526",
    kind: FindingKind::CloudDiscovery,
};
const SNAPSHOT_SEARCH: Change = Change {
    what: "public or shared snapshots searched",
    stage: "discovery",
    technique: "T1580",
    kind: FindingKind::CloudDiscovery,
};
const KEY_CHECK: Change = Change {
    what: "a long-term access key asked whose it is",
    stage: "discovery",
    technique: "T1033",
    kind: FindingKind::CloudDiscovery,
};
const SESSION_TOKEN: Change = Change {
    what: "temporary credentials minted from a long-term access key",
    stage: "defense-evasion",
    technique: "T1550.001",
    kind: FindingKind::CloudSensitiveAccess,
};
const INSTANCE_SECRET: Change = Change {
    what: "an instance's password or user data read",
    stage: "credential-access",
    technique: "T1552",
    kind: FindingKind::CloudSensitiveAccess,
};
const DB_LOGS: Change = Change {
    what: "database log files downloaded",
    stage: "collection",
    technique: "T1213",
    kind: FindingKind::CloudSensitiveAccess,
};
const AI_USED: Change = Change {
    what: "AI models invoked",
    stage: "impact",
    technique: "T1496",
    kind: FindingKind::CloudSensitiveAccess,
};
const AI_ENABLED: Change = Change {
    what: "access to AI models enabled or accepted",
    stage: "impact",
    technique: "T1496",
    kind: FindingKind::CloudConfigChange,
};
const PERIMETER: Change = Change {
    what: "a call refused by a network perimeter (endpoint or service perimeter policy)",
    stage: "collection",
    technique: "T1530",
    kind: FindingKind::CloudSensitiveAccess,
};
const ENDPOINT_FROM_INTERNET: Change = Change {
    what: "storage reached through a VPC endpoint from an Internet address (an endpoint's callers are inside the network)",
    stage: "collection",
    technique: "T1530",
    kind: FindingKind::CloudSensitiveAccess,
};
const SIGNED_URL: Change = Change {
    what: "storage reached from the Internet with a shared access signature",
    stage: "collection",
    technique: "T1530",
    kind: FindingKind::CloudSensitiveAccess,
};
const POLICY_DEPLOY: Change = Change {
    what: "resources deployed by a policy (deployIfNotExists)",
    stage: "persistence",
    technique: "T1484",
    kind: FindingKind::CloudConfigChange,
};

/// The sensitive call `e` makes, read or write, when it is one to watch
/// (see [`ACCOUNT_READ`] and the rest).
fn sensitive(e: &AuditEvent) -> Option<Change> {
    if e.principal.kind == "AWSService" {
        return None;
    }
    let a = e.action.as_str();
    let param = |k: &str| e.detail_at(&format!("requestParameters/{k}"));
    match e.cloud {
        Cloud::Aws => {
            if e.error.as_deref() == Some("VpceAccessDenied") {
                return Some(PERIMETER);
            }
            if e.service == "s3"
                && e.detail_str("vpcEndpointId").is_some()
                && e.source_ip.is_some_and(cordon_core::ip::is_internet)
            {
                return Some(ENDPOINT_FROM_INTERNET);
            }
            let long_term = e.principal.kind == "IAMUser";
            Some(match e.service.as_str() {
                "organizations" if a.starts_with("Describe") || a.starts_with("List") => {
                    ACCOUNT_READ
                }
                "account" | "billingconsole"
                    if matches!(
                        a,
                        "GetAlternateContact"
                            | "GetContactInformation"
                            | "GetPrimaryEmail"
                            | "GetAccountInformation"
                    ) =>
                {
                    ACCOUNT_READ
                }
                "ses" | "sesv2"
                    if matches!(
                        a,
                        "GetSendQuota"
                            | "GetSendStatistics"
                            | "GetAccountSendingEnabled"
                            | "GetAccount"
                            | "ListIdentities"
                            | "ListEmailIdentities"
                            | "GetIdentityVerificationAttributes"
                    ) =>
                {
                    EMAIL_READ
                }
                "rds"
                    if matches!(a, "DescribeDBSnapshots" | "DescribeDBClusterSnapshots")
                        && (param("includePublic") == Some(&Value::Bool(true))
                            || param("includeShared") == Some(&Value::Bool(true))) =>
                {
                    SNAPSHOT_SEARCH
                }
                "rds" if matches!(a, "DownloadDBLogFilePortion" | "DownloadCompleteDBLogFile") => {
                    DB_LOGS
                }
                "sts" if a == "GetCallerIdentity" && long_term => KEY_CHECK,
                "sts" if a == "GetSessionToken" && long_term => SESSION_TOKEN,
                "ec2" if a == "GetPasswordData" => INSTANCE_SECRET,
                "ec2"
                    if a == "DescribeInstanceAttribute"
                        && param("attribute").and_then(Value::as_str) == Some("userData") =>
                {
                    INSTANCE_SECRET
                }
                "bedrock"
                    if matches!(
                        a,
                        "InvokeModel"
                            | "InvokeModelWithResponseStream"
                            | "Converse"
                            | "ConverseStream"
                    ) =>
                {
                    AI_USED
                }
                // A declared vendor's identity is expected there.
                _ => return None,
            })
        }
        Cloud::Gcp => {
            let m = a.to_ascii_lowercase();
            if m.contains("aiplatform.")
                && [
                    "predict",
                    "generatecontent",
                    "streamgeneratecontent",
                    "rawpredict",
                ]
                .iter()
                .any(|x| m.ends_with(x))
            {
                Some(AI_USED)
            } else if e
                .detail_at("metadata/violationReason")
                .or_else(|| e.detail_at("metadata/ingressViolations"))
                .or_else(|| e.detail_at("metadata/egressViolations"))
                .is_some()
            {
                Some(PERIMETER)
            } else {
                None
            }
        }
        // A shared access signature is a bearer key to the storage: from
        // the Internet, whoever holds the link.
        Cloud::Azure
            if (e.detail_at("signed_uri").is_some() || e.detail_str("auth") == Some("SAS"))
                && e.source_ip.is_some_and(cordon_core::ip::is_internet) =>
        {
            Some(SIGNED_URL)
        }
        Cloud::Azure => None,
    }
}

/// The kind of change an AWS call makes, when it is one to watch.
fn aws(service: &str, action: &str) -> Option<Change> {
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| action.starts_with(p));
    Some(match service {
        "ec2" if action.contains("TrafficMirror") => MIRROR,
        "ec2"
            if starts(&[
                "AuthorizeSecurityGroup",
                "RevokeSecurityGroup",
                "CreateSecurityGroup",
                "DeleteSecurityGroup",
                "ModifySecurityGroupRules",
                "UpdateSecurityGroupRuleDescriptions",
                "CreateNetworkAcl",
                "DeleteNetworkAcl",
                "ReplaceNetworkAcl",
                "CreateCustomerGateway",
                "DeleteCustomerGateway",
                "AttachInternetGateway",
                "CreateInternetGateway",
                "DeleteInternetGateway",
                "DetachInternetGateway",
                "CreateRoute",
                "ReplaceRoute",
                "DeleteRoute",
                "DisassociateRouteTable",
                "AssociateRouteTable",
                "CreateVpc",
                "DeleteVpc",
                "ModifyVpcAttribute",
                "AcceptVpcPeeringConnection",
                "RejectVpcPeeringConnection",
                "AttachClassicLinkVpc",
                "DetachClassicLinkVpc",
                "DisableVpcClassicLink",
                "EnableVpcClassicLink",
                "CreateTransitGatewayRoute",
                "DeleteTransitGatewayRoute",
            ]) =>
        {
            NETWORK
        }
        "ec2" if starts(&["CreateSnapshot", "CopySnapshot", "CreateImage", "CopyImage"]) => {
            SNAPSHOT
        }
        "ec2" if starts(&["DeleteSnapshot"]) => DESTROYED,
        "ec2" if starts(&["ModifyInstanceAttribute", "StopInstances"]) => RESTORE,
        "ec2" if action == "TerminateInstances" => INSTANCE_DELETED,
        _ if action == "EnableRegion" => REGION,
        "bedrock"
            if starts(&[
                "PutFoundationModelEntitlement",
                "CreateFoundationModelAgreement",
                "PutUseCaseForModelAccess",
            ]) =>
        {
            AI_ENABLED
        }
        "ec2-instance-connect" => REMOTE,
        "ssm" if starts(&["SendCommand", "StartSession", "StartAutomationExecution"]) => COMMAND,
        "rds"
            if starts(&[
                "AuthorizeDBSecurityGroupIngress",
                "RevokeDBSecurityGroupIngress",
            ]) =>
        {
            NETWORK
        }
        "rds" if starts(&["StopActivityStream"]) => MONITORING,
        "rds"
            if starts(&[
                "CreateDBSnapshot",
                "CreateDBClusterSnapshot",
                "CopyDBSnapshot",
                "CopyDBClusterSnapshot",
                "StartExportTask",
            ]) =>
        {
            SNAPSHOT
        }
        "rds"
            if starts(&[
                "DeleteDBInstanceAutomatedBackup",
                "DeleteDBClusterAutomatedBackup",
            ]) =>
        {
            RECOVERY
        }
        "rds" if starts(&["DeleteDB"]) => DESTROYED,
        "rds"
            if starts(&[
                "RestoreDB",
                "ModifyDBInstance",
                "ModifyDBCluster",
                "RebootDB",
                "FailoverDB",
                "FailoverGlobalCluster",
                "SwitchoverGlobalCluster",
                "AddRoleToDB",
                "ModifyDBSnapshotAttribute",
                "ModifyDBClusterSnapshotAttribute",
            ]) =>
        {
            RESTORE
        }
        "iam"
            if starts(&[
                "CreateUser",
                "CreateRole",
                "CreateGroup",
                "CreateServiceLinkedRole",
            ]) =>
        {
            NEW_IDENTITY
        }
        "iam"
            if !action.starts_with("Get")
                && !action.starts_with("List")
                && !action.starts_with("Generate")
                && !action.starts_with("Simulate") =>
        {
            IAM
        }
        "signin" if action == "PasswordUpdated" => IAM,
        "signin" if action == "GetSigninToken" => IAM,
        "cloudtrail" if starts(&["CreateTrail", "UpdateTrail", "PutInsightSelectors"]) => {
            MONITORING
        }
        "config" if starts(&["Put", "Delete", "Stop"]) => MONITORING,
        "guardduty" | "macie" | "macie2" | "securityhub" | "inspector2" | "detective"
            if starts(&["Delete", "Disable", "Disassociate", "Update", "Create"]) =>
        {
            MONITORING
        }
        "logs"
            if starts(&[
                "DeleteLogGroup",
                "DeleteLogStream",
                "DeleteSubscriptionFilter",
            ]) =>
        {
            MONITORING
        }
        "monitoring" if starts(&["DeleteAlarms", "DisableAlarmActions"]) => MONITORING,
        "events" if starts(&["DisableRule", "DeleteRule"]) => MONITORING,
        "bedrock" if starts(&["DeleteModelInvocationLoggingConfiguration"]) => MONITORING,
        "bedrock" if starts(&["UpdateGuardrail", "DeleteGuardrail"]) => GUARDRAIL,
        "waf" | "waf-regional" | "wafv2" if starts(&["Update", "Delete"]) => GUARDRAIL,
        "s3" if starts(&["DeleteBucketEncryption", "DeleteBucketReplication"]) => GUARDRAIL,
        "s3" if starts(&["DeleteBucket"])
            && !action.contains("Tagging")
            && !action.contains("Cors") =>
        {
            DESTROYED
        }
        "s3" if matches!(
            action,
            "PutBucketPolicy" | "DeleteBucketPolicy" | "PutBucketAcl"
        ) =>
        {
            GUARDRAIL
        }
        "lambda" if starts(&["AddPermission", "RemovePermission"]) => IAM,
        "kms" if starts(&["DisableKey", "ScheduleKeyDeletion"]) => DESTROYED,
        "backup"
            if starts(&[
                "DeleteBackupVault",
                "DeleteRecoveryPoint",
                "DeleteBackupPlan",
            ]) =>
        {
            RECOVERY
        }
        "lambda"
            if starts(&[
                "UpdateFunctionCode",
                "UpdateFunctionConfiguration",
                "CreateFunction",
                "DeleteFunction",
                "PublishLayerVersion",
                "AddLayerVersionPermission",
            ]) =>
        {
            FUNCTION
        }
        _ => return None,
    })
}

/// The kind of change an Azure operation (`Microsoft.Network/…/write`,
/// any case) makes, when it is one to watch.
fn azure(op: &str) -> Option<Change> {
    let op = op.to_ascii_lowercase();
    let has = |parts: &[&str]| parts.iter().any(|p| op.contains(p));
    if !op.starts_with("microsoft.") {
        return entra(&op);
    }
    // Certificates read from a vault: their private keys come with them
    // when the vault allows export.
    if op.starts_with("microsoft.keyvault/vaults/certificates/") && op.ends_with("/read") {
        return Some(VAULT_READ);
    }
    let verb = op.rsplit('/').next().unwrap_or("");
    let changes = matches!(verb, "write" | "delete" | "action");
    if !changes {
        return None;
    }
    Some(if has(&["/deployifnotexists/action"]) {
        POLICY_DEPLOY
    } else if has(&["startpacketcapture/action", "/packetcaptures/write"]) {
        MIRROR
    } else if has(&["/networkwatchers/delete", "/diagnosticsettings/write"]) {
        MONITORING
    } else if has(&[
        "/networksecuritygroups/",
        "microsoft.network/firewallpolicies/",
        "microsoft.network/azurefirewalls/",
        "microsoft.network/virtualnetworks/delete",
        "microsoft.network/routetables/",
        "microsoft.sql/servers/firewallrules/",
    ]) {
        NETWORK
    } else if has(&[
        "/runcommand/action",
        "/runcommands/write",
        "microsoft.compute/virtualmachines/extensions/write",
        "microsoft.compute/galleries/applications/versions/write",
        "microsoft.serialconsole/serialports/connect/action",
    ]) {
        COMMAND
    } else if has(&[
        "microsoft.automation/automationaccounts",
        "microsoft.web/sites/hostruntime/host/action",
    ]) {
        FUNCTION
    } else if has(&["microsoft.compute/disks/begingetaccess/action"]) {
        DISK_LINK
    } else if has(&[
        "/snapshots/delete",
        "/restorepointcollections/delete",
        "microsoft.recoveryservices/",
    ]) && verb == "delete"
    {
        RECOVERY
    } else if has(&[
        "microsoft.compute/virtualmachines/delete",
        "microsoft.compute/disks/delete",
        "microsoft.sql/servers/delete",
        "microsoft.storage/storageaccounts/delete",
        "microsoft.resources/subscriptions/resourcegroups/delete",
        "microsoft.eventhub/namespaces",
        "microsoft.keyvault/vaults/delete",
        "/purge/action",
    ]) && (verb == "delete" || op.ends_with("/purge/action"))
    {
        DESTROYED
    } else if has(&[
        "microsoft.insights/alertrules/delete",
        "microsoft.insights/metricalerts/delete",
        "microsoft.insights/actiongroups/delete",
        "microsoft.insights/activitylogalerts/delete",
        "microsoft.insights/scheduledqueryrules/delete",
        "microsoft.operationalinsights/workspaces/delete",
        "microsoft.security/alertssuppressionrules/write",
    ]) {
        MONITORING
    } else if has(&[
        "microsoft.authorization/locks/delete",
        "/immutabilitypolicies/delete",
        "microsoft.storage/storageaccounts/write",
        "microsoft.storage/storageaccounts/blobservices/write",
        "microsoft.storage/storageaccounts/blobservices/containers/write",
        "microsoft.storage/storageaccounts/fileservices/shares/write",
    ]) {
        GUARDRAIL
    } else if has(&["microsoft.storage/storageaccounts/listkeys/action"]) {
        KEYS_LISTED
    } else if has(&[
        "microsoft.keyvault/vaults/secrets/getsecret/action",
        "microsoft.keyvault/vaults/keys/read/action",
        "microsoft.keyvault/vaults/secrets/recover/action",
        "microsoft.keyvault/vaults/keys/recover/action",
        "microsoft.keyvault/vaults/keys/restore/action",
        "microsoft.keyvault/vaults/secrets/restore/action",
    ]) {
        VAULT_READ
    } else if has(&[
        "microsoft.authorization/roleassignments/write",
        "microsoft.storage/storageaccounts/regeneratekey/action",
        "rbac.authorization.k8s.io/rolebindings/write",
        "rbac.authorization.k8s.io/clusterrolebindings/write",
    ]) {
        IAM
    } else {
        return None;
    })
}

/// The kind of change an Entra ID directory operation (`Update
/// conditional access policy`, `Add member to role`, lower case) makes,
/// when it is one to watch.
fn entra(op: &str) -> Option<Change> {
    let has = |parts: &[&str]| parts.iter().any(|p| op.contains(p));
    // `Update conditional access policy`, or the verb last as some
    // exports write it (`Authentication Methods Policy Update`).
    let changes = [
        "add ", "update ", "delete ", "set ", "remove ", "disable ", "invite ",
    ]
    .iter()
    .any(|v| op.starts_with(v) || op.ends_with(&format!(" {}", v.trim_end())));
    if !changes {
        return None;
    }
    Some(
        if has(&[
            "conditional access policy",
            "authentication methods policy",
            "authentication method",
            "security defaults",
        ]) || matches!(op, "update policy" | "delete policy" | "add policy")
        {
            GUARDRAIL
        } else if has(&["external user"]) {
            NEW_IDENTITY
        } else if has(&[
            "member to role",
            "eligible member",
            "federation settings",
            "domain authentication",
            "owner to application",
            "owner to service principal",
            "app role assignment",
        ]) {
            IAM
        } else {
            return None;
        },
    )
}

/// The kind of change a GCP method (`v1.compute.firewalls.insert`,
/// `google.iam.admin.v1.CreateServiceAccount`, any case) makes, when it is
/// one to watch.
fn gcp(method: &str) -> Option<Change> {
    let m = method.to_ascii_lowercase();
    let has = |parts: &[&str]| parts.iter().any(|p| m.contains(p));
    let last = m.rsplit('.').next().unwrap_or("");
    Some(
        if m.ends_with("setiampolicy") || m.ends_with("setiampermissions") {
            IAM
        } else if has(&["createserviceaccount"]) && !has(&["key"]) {
            NEW_IDENTITY
        } else if has(&[
            "admin.v1.createrole",
            "admin.v1.updaterole",
            "addgroupmember",
            "addmember",
        ]) {
            IAM
        } else if has(&[
            "compute.firewalls.",
            "compute.routes.",
            "compute.networks.",
            "compute.subnetworks.",
            "compute.securitypolicies.",
        ]) && matches!(last, "insert" | "patch" | "update" | "delete")
        {
            NETWORK
        } else if has(&[
            "compute.instances.setmetadata",
            "compute.projects.setcommoninstancemetadata",
        ]) {
            REMOTE
        } else if has(&[
            "compute.snapshots.insert",
            "compute.disks.createsnapshot",
            "compute.images.insert",
            "compute.machineimages.insert",
        ]) {
            SNAPSHOT
        } else if has(&[
            "destroycryptokeyversion",
            "storage.buckets.delete",
            "compute.snapshots.delete",
        ]) {
            DESTROYED
        } else if has(&[
            "cloudfunctions.v1.cloudfunctionsservice.updatefunction",
            "cloudfunctions.v1.cloudfunctionsservice.createfunction",
            "cloudfunctions.v2.functionservice.updatefunction",
            "cloudfunctions.v2.functionservice.createfunction",
        ]) {
            FUNCTION
        } else if has(&[
            "logging.v2.configservicev2.updatesink",
            "logging.v2.configservicev2.updatebucket",
        ]) {
            MONITORING
        } else {
            return None;
        },
    )
}

/// The change `e` makes, when it is one to watch.
pub(super) fn change(e: &AuditEvent) -> Option<Change> {
    if let Some(c) = sensitive(e) {
        return Some(c);
    }
    match e.cloud {
        Cloud::Aws => {}
        Cloud::Azure => return azure(&e.action),
        Cloud::Gcp => return gcp(&e.action),
    }
    // The root user for anything but reading (CIS: root is for the few
    // tasks only it can do).
    if e.principal.kind == "Root" && (e.read_only != Some(true) || e.is_sign_in()) {
        return Some(ROOT);
    }
    // Calls a cloud service makes on its own (autoscaling, backups) are
    // the service's routine.
    if e.read_only == Some(true) || e.principal.kind == "AWSService" {
        return None;
    }
    // GPU and accelerator families: what hijackers launch to mine.
    if e.service == "ec2"
        && e.action == "RunInstances"
        && let Some(t) = e.detail_str("requestParameters/instanceType")
    {
        let family = t.split('.').next().unwrap_or_default();
        if ["p", "g", "inf", "trn", "dl", "f"].iter().any(|f| {
            family
                .strip_prefix(f)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        }) {
            return Some(HIJACK);
        }
    }
    aws(&e.service, &e.action)
}

/// A finding for a watched change, when `e` makes one (keyed per identity,
/// kind of change and day).
pub(super) fn changed(e: &AuditEvent) -> Option<Finding> {
    let c = change(e)?;
    let day = e.time_ms.div_euclid(super::DAY_MS);
    let mut f = audit_finding(
        c.kind,
        &format!("change|{}|{}|{day}", who(e), c.what),
        e,
        LOW,
        format!("{}: {} by {} from {}", c.what, e.action, who(e), from(e)),
    );
    f.stage = c.stage.to_string();
    f.techniques = vec![c.technique.to_string()];
    fact(&mut f, "change", c.what);
    let why = if c.kind == FindingKind::CloudConfigChange {
        "a security-relevant change administrators also make; low alone, told once a day per identity and kind"
    } else {
        "a call reaching what an intruder looks for, which daily work also makes now and then; low alone, told once a day per identity and kind"
    };
    calibrate(&mut f, (Severity::Low, why.into()));
    Some(f)
}
