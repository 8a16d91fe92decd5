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
}

const NETWORK: Change = Change {
    what: "network perimeter changed",
    stage: "defense-evasion",
    technique: "T1562.007",
};
const MIRROR: Change = Change {
    what: "traffic mirroring set up or changed",
    stage: "collection",
    technique: "T1040",
};
const IAM: Change = Change {
    what: "identities or permissions changed",
    stage: "persistence",
    technique: "T1098",
};
const NEW_IDENTITY: Change = Change {
    what: "a cloud identity created",
    stage: "persistence",
    technique: "T1136.003",
};
const MONITORING: Change = Change {
    what: "logging or monitoring changed",
    stage: "defense-evasion",
    technique: "T1562.008",
};
const GUARDRAIL: Change = Change {
    what: "a guardrail or protection changed",
    stage: "defense-evasion",
    technique: "T1562.001",
};
const DESTROYED: Change = Change {
    what: "keys, data or backups destroyed or scheduled for deletion",
    stage: "impact",
    technique: "T1485",
};
const RECOVERY: Change = Change {
    what: "backups or recovery points deleted",
    stage: "impact",
    technique: "T1490",
};
const SNAPSHOT: Change = Change {
    what: "a snapshot or image taken or copied",
    stage: "defense-evasion",
    technique: "T1578.001",
};
const RESTORE: Change = Change {
    what: "an instance or database restored, created or changed",
    stage: "defense-evasion",
    technique: "T1578.002",
};
const COMMAND: Change = Change {
    what: "a command or session sent to an instance",
    stage: "execution",
    technique: "T1651",
};
const REMOTE: Change = Change {
    what: "an SSH key pushed to an instance or its serial console",
    stage: "lateral-movement",
    technique: "T1021.007",
};
const FUNCTION: Change = Change {
    what: "function code or configuration changed",
    stage: "execution",
    technique: "T1648",
};
const DISK_LINK: Change = Change {
    what: "a download link to a disk generated",
    stage: "collection",
    technique: "T1530",
};
const KEYS_LISTED: Change = Change {
    what: "storage account keys listed",
    stage: "credential-access",
    technique: "T1552",
};
const VAULT_READ: Change = Change {
    what: "vault secrets, keys or certificates read or recovered",
    stage: "credential-access",
    technique: "T1555.006",
};
const REGION: Change = Change {
    what: "a region enabled",
    stage: "defense-evasion",
    technique: "T1535",
};
const INSTANCE_DELETED: Change = Change {
    what: "instances terminated",
    stage: "defense-evasion",
    technique: "T1578.003",
};
const HIJACK: Change = Change {
    what: "accelerated (GPU) instances launched",
    stage: "impact",
    technique: "T1496",
};
const ROOT: Change = Change {
    what: "the account's root user used",
    stage: "initial-access",
    technique: "T1078.004",
};

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
    let verb = op.rsplit('/').next().unwrap_or("");
    let changes = matches!(verb, "write" | "delete" | "action");
    if !changes {
        return None;
    }
    Some(
        if has(&["startpacketcapture/action", "/packetcaptures/write"]) {
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
        },
    )
}

/// The kind of change an Entra ID directory operation (`Update
/// conditional access policy`, `Add member to role`, lower case) makes,
/// when it is one to watch.
fn entra(op: &str) -> Option<Change> {
    let has = |parts: &[&str]| parts.iter().any(|p| op.contains(p));
    let changes = [
        "add ", "update ", "delete ", "set ", "remove ", "disable ", "invite ",
    ]
    .iter()
    .any(|v| op.starts_with(v));
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
    let day = e.time_ms.div_euclid(86_400_000);
    let mut f = audit_finding(
        FindingKind::CloudConfigChange,
        &format!("change|{}|{}|{day}", who(e), c.what),
        e,
        LOW,
        format!("{}: {} by {} from {}", c.what, e.action, who(e), from(e)),
    );
    f.stage = c.stage.to_string();
    f.techniques = vec![c.technique.to_string()];
    fact(&mut f, "change", c.what);
    calibrate(
        &mut f,
        (
            Severity::Low,
            "a security-relevant change administrators also make; low alone, told once a day per identity and kind".into(),
        ),
    );
    Some(f)
}
