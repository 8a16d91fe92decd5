//! The audit-event detectors on CloudTrail records: what they must find,
//! and ordinary administration they must leave alone.

use std::net::IpAddr;

use crate::Engine;
use crate::config::Config;
use crate::finding::Finding;
use crate::kb::Kb;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A CloudTrail record, normalised, with `extra` merged in.
fn trail(action: &str, service: &str, extra: serde_json::Value) -> cordon_audit::AuditEvent {
    let mut record = serde_json::json!({
        "eventVersion": "1.08",
        "eventTime": "2026-03-01T10:00:00Z",
        "eventSource": format!("{service}.amazonaws.com"),
        "eventName": action,
        "sourceIPAddress": "203.0.113.9",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ops", "accountId": "111122223333"},
        "recipientAccountId": "111122223333",
    });
    if let (Some(r), Some(x)) = (record.as_object_mut(), extra.as_object()) {
        for (k, v) in x {
            r.insert(k.clone(), v.clone());
        }
    }
    cordon_audit::cloudtrail::normalise(&record).unwrap()
}

fn audit_run(events: &[cordon_audit::AuditEvent]) -> Vec<Finding> {
    let mut e = Engine::new(Config::default(), Kb::embedded().unwrap(), None);
    for ev in events {
        e.observe_event(ev);
    }
    e.finish()
}

#[test]
fn cloud_calls_an_intruder_makes_are_found_with_their_techniques() {
    use cordon_core::FindingKind as K;
    use serde_json::json;
    let cases = [
        (
            trail(
                "StopLogging",
                "cloudtrail",
                json!({"requestParameters": {"name": "main"}}),
            ),
            K::CloudDefensesImpaired,
            "T1562.008",
        ),
        (
            trail(
                "AuthorizeSecurityGroupIngress",
                "ec2",
                json!({"requestParameters": {"groupId": "sg-1", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIp": "0.0.0.0/0"}}),
            ),
            K::CloudDefensesImpaired,
            "T1562.007",
        ),
        (
            trail(
                "ModifySnapshotAttribute",
                "ec2",
                json!({"requestParameters": {"snapshotId": "snap-1", "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}}}}),
            ),
            K::CloudDataShared,
            "T1537",
        ),
        (
            trail(
                "PutBucketPolicy",
                "s3",
                json!({"requestParameters": {"bucketName": "users-data", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "s3:GetObject", "Resource": "*"}]}}}),
            ),
            K::CloudDataShared,
            "T1537",
        ),
        (
            trail(
                "UpdateAssumeRolePolicy",
                "iam",
                json!({"requestParameters": {"roleName": "ops", "policyDocument": "{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::999988887777:root\"},\"Action\":\"sts:AssumeRole\"}]}"}}),
            ),
            K::CloudPersistence,
            "T1199",
        ),
        (
            trail(
                "CreateLoginProfile",
                "iam",
                json!({"requestParameters": {"userName": "bob", "passwordResetRequired": false}}),
            ),
            K::CloudPersistence,
            "T1098",
        ),
        (
            trail(
                "ConsoleLogin",
                "signin",
                json!({"additionalEventData": {"MFAUsed": "No"}, "responseElements": {"ConsoleLogin": "Success"}}),
            ),
            K::CloudAccountCompromise,
            "T1078.004",
        ),
    ];
    for (event, kind, technique) in cases {
        let found = audit_run(std::slice::from_ref(&event));
        let f = found
            .iter()
            .find(|f| f.kind == kind)
            .unwrap_or_else(|| panic!("{}: {found:#?}", event.action));
        assert!(
            f.techniques.contains(&technique.to_string()),
            "{}: {f:?}",
            event.action
        );
        assert!(f.severity >= crate::finding::Severity::Medium, "{f:?}");
        assert_eq!(f.src_entity.ip, Some(ip("203.0.113.9")));
        assert!(f.evidence.facts.contains_key("severity_reason"));
        assert_eq!(
            f.evidence.facts["events"][0]["action"],
            format!("{}:{}", event.service, event.action)
        );
    }
}

#[test]
fn ordinary_cloud_administration_is_left_alone_or_low() {
    use serde_json::json;
    let quiet = [
        // A policy held to the organisation by a condition.
        trail(
            "PutBucketPolicy",
            "s3",
            json!({"requestParameters": {"bucketName": "b", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}]}}}),
        ),
        // Shared with the account itself, or to a cloud service.
        trail(
            "ModifySnapshotAttribute",
            "ec2",
            json!({"requestParameters": {"createVolumePermission": {"add": {"items": [{"userId": "111122223333"}]}}}}),
        ),
        trail(
            "PutBucketPolicy",
            "s3",
            json!({"requestParameters": {"bucketName": "b", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject", "Resource": "*"}]}}}),
        ),
        // An administrator's password reset, a user's own key.
        trail(
            "UpdateLoginProfile",
            "iam",
            json!({"requestParameters": {"userName": "bob", "passwordResetRequired": true}}),
        ),
        trail(
            "CreateAccessKey",
            "iam",
            json!({"requestParameters": {"userName": "ops"}}),
        ),
        // A federated sign-in (MFA at the identity provider), a sign-in with MFA.
        trail(
            "ConsoleLogin",
            "signin",
            json!({"userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/sso/alice"}, "additionalEventData": {"MFAUsed": "No", "SamlProviderArn": "arn:aws:iam::111122223333:saml-provider/idp"}, "responseElements": {"ConsoleLogin": "Success"}}),
        ),
        trail(
            "ConsoleLogin",
            "signin",
            json!({"additionalEventData": {"MFAUsed": "Yes"}, "responseElements": {"ConsoleLogin": "Success"}}),
        ),
        // Port 443 open to the world is a web server.
        trail(
            "AuthorizeSecurityGroupIngress",
            "ec2",
            json!({"requestParameters": {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIp": "0.0.0.0/0"}}),
        ),
        trail(
            "GetSecretValue",
            "secretsmanager",
            json!({"requestParameters": {"secretId": "db"}}),
        ),
    ];
    // Nothing sharper than a watched change (low, told once a day).
    for event in &quiet {
        let found = audit_run(std::slice::from_ref(event));
        assert!(
            found
                .iter()
                .all(|f| f.kind == cordon_core::FindingKind::CloudConfigChange
                    && f.severity == crate::finding::Severity::Low),
            "{}: {found:#?}",
            event.action
        );
    }
    // A refused attempt is visible, low.
    let refused = trail(
        "StopLogging",
        "cloudtrail",
        json!({"errorCode": "AccessDenied"}),
    );
    let found = audit_run(&[refused]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, crate::finding::Severity::Low);
    assert!(
        found[0]
            .evidence
            .summary
            .starts_with("attempted, refused (AccessDenied)")
    );
}

#[test]
fn guessed_passwords_and_bulk_secret_reads_are_found_over_several_events() {
    use serde_json::json;
    let at = |s: u32| format!("2026-03-01T10:{:02}:{:02}Z", s / 60, s % 60);
    let mut events = Vec::new();
    for i in 0..6 {
        events.push(trail("ConsoleLogin", "signin", json!({"eventTime": at(i * 20), "additionalEventData": {"MFAUsed": "Yes"}, "responseElements": {"ConsoleLogin": "Failure"}, "errorMessage": "Failed authentication"})));
    }
    events.push(trail("ConsoleLogin", "signin", json!({"eventTime": at(200), "additionalEventData": {"MFAUsed": "Yes"}, "responseElements": {"ConsoleLogin": "Success"}})));
    for i in 0..8 {
        events.push(trail("GetSecretValue", "secretsmanager", json!({"eventTime": at(300 + i), "requestParameters": {"secretId": format!("prod/db-{i}")}})));
    }
    let found = audit_run(&events);
    let run = found
        .iter()
        .find(|f| {
            f.evidence.facts.get("shape").and_then(|v| v.as_str()) == Some("failures then success")
        })
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert_eq!(run.severity, crate::finding::Severity::High);
    assert!(run.techniques.contains(&"T1110".to_string()));
    let bulk = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::CloudBulkRead)
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert_eq!(bulk.techniques, ["T1555.006"]);
    assert_eq!(bulk.evidence.facts["distinct_resources"], 5);
}

#[test]
fn a_role_used_from_a_network_it_never_used_is_news_after_a_day() {
    use serde_json::json;
    let call = |day: u32, hour: u32, ip: &str, agent: &str| {
        trail(
            "GetObject",
            "s3",
            json!({
                "eventTime": format!("2026-03-{:02}T{hour:02}:00:00Z", day),
                "sourceIPAddress": ip,
                "userAgent": agent,
                "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::444455556666:assumed-role/vendor-mailer/s{day}{hour}"), "accountId": "444455556666"},
                "requestParameters": {"bucketName": "users-data", "key": "k"},
            }),
        )
    };
    // Two days of the vendor's role from its own network.
    let mut events: Vec<_> = (0..48)
        .map(|h| {
            call(
                1 + h / 24,
                h % 24,
                &format!("18.200.7.{}", 10 + h % 5),
                "aws-sdk-java/2.20",
            )
        })
        .collect();
    // Then from somewhere else.
    events.push(call(3, 2, "91.92.109.77", "aws-sdk-java/2.20"));
    let found = audit_run(&events);
    let f = found
        .iter()
        .find(|f| f.evidence.facts.get("shape").and_then(|v| v.as_str()) == Some("new network"))
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert_eq!(f.severity, crate::finding::Severity::Medium);
    assert_eq!(f.evidence.facts["network"], "91.92.109.0/24");
    // The role belongs to another account: a third party's trust.
    assert!(f.techniques.contains(&"T1199".to_string()), "{f:?}");
    // A new network within the first day is learning, not news; a person
    // in a browser from a new network is low.
    let mut early: Vec<_> = (0..5)
        .map(|h| call(1, h, "18.200.7.10", "aws-sdk-java/2.20"))
        .collect();
    early.push(call(1, 6, "91.92.109.77", "aws-sdk-java/2.20"));
    assert!(audit_run(&early).is_empty());
    let mut person = events[..48].to_vec();
    person.push(call(3, 2, "91.92.109.77", "Mozilla/5.0"));
    let found = audit_run(&person);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, crate::finding::Severity::Low);
}

/// Enrich `events` against a policy naming the vendor's identities.
fn enriched(mut events: Vec<cordon_audit::AuditEvent>) -> Vec<cordon_audit::AuditEvent> {
    let yaml = r#"
apiVersion: cordon/v1
kind: Policy
metadata: {name: t}
spec:
  groups:
    mailer:
      external: true
      cidrs: [18.200.7.0/24]
      identities: ["arn:aws:iam::111122223333:role/partners/mailer"]
      vendor: {name: Mailer Inc}
  rules:
    - {name: r, from: [mailer], to: [any], ports: [tcp/443], action: deny}
"#;
    let policy =
        cordon_policy::parse_policy("t.yaml", yaml, &cordon_policy::LoadOptions::default())
            .unwrap();
    let mut en = cordon_audit::AuditEnricher::new(std::sync::Arc::new(
        cordon_policy::CompiledPolicy::new(std::sync::Arc::new(policy)),
    ));
    for e in &mut events {
        en.enrich(e);
    }
    events
}

#[test]
fn a_vendor_role_used_outside_its_declared_ranges_is_high_and_off_its_baseline_low() {
    use crate::finding::Severity;
    use serde_json::json;
    let call = |day: u32, hour: u32, ip: &str, action: &str| {
        trail(
            action,
            "s3",
            json!({
                "eventTime": format!("2026-03-{day:02}T{hour:02}:10:00Z"),
                "sourceIPAddress": ip,
                "userIdentity": {
                    "type": "AssumedRole",
                    "arn": format!("arn:aws:sts::111122223333:assumed-role/mailer/sync-{day}-{hour}"),
                    "accountId": "111122223333",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/partners/mailer"}}
                },
                "requestParameters": {"bucketName": "templates", "key": "welcome.html"},
            }),
        )
    };
    // Two days of the vendor's sync from its declared range: nothing.
    let baseline: Vec<_> = (0..48)
        .map(|h| call(1 + h / 24, h % 24, "18.200.7.40", "GetObject"))
        .collect();
    assert!(audit_run(&enriched(baseline.clone())).is_empty());
    // The same role from elsewhere: high at once, with the vendor named
    // for the incident, whatever the baseline.
    let mut events = baseline.clone();
    events.push(call(3, 2, "91.92.109.77", "GetObject"));
    let found = audit_run(&enriched(events));
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f.severity, Severity::High);
    assert!(
        f.techniques.contains(&"T1199".to_string())
            && f.techniques.contains(&"T1078.004".to_string())
    );
    assert_eq!(f.src_entity.vendor.as_deref(), Some("Mailer Inc"));
    assert!(
        f.evidence.summary.contains("18.200.7.0/24"),
        "{}",
        f.evidence.summary
    );
    let early = enriched(vec![call(1, 0, "91.92.109.77", "GetObject")]);
    assert_eq!(audit_run(&early)[0].severity, Severity::High);
    // From its own range but calling what it never called: low drift.
    let mut events = baseline;
    events.push(call(3, 2, "18.200.7.40", "GetBucketAcl"));
    let found = audit_run(&enriched(events));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, Severity::Low);
    assert_eq!(
        found[0].evidence.facts["shape"],
        "vendor identity off its baseline"
    );
}

#[test]
fn a_roaming_machine_identity_is_not_news_on_one_more_network() {
    use serde_json::json;
    let call = |day: u32, hour: u32, ip: &str| {
        trail(
            "PutImage",
            "ecr",
            json!({
                "eventTime": format!("2026-03-{day:02}T{hour:02}:00:00Z"),
                "sourceIPAddress": ip,
                "userAgent": "aws-sdk-go-v2/1.30",
                "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::111122223333:assumed-role/ci-deploy/run-{day}{hour}"), "accountId": "111122223333"},
            }),
        )
    };
    // CI runners: a different network every few hours for two days.
    let mut events: Vec<_> = (0..48)
        .map(|h| call(1 + h / 24, h % 24, &format!("140.82.{}.9", 112 + h / 8)))
        .collect();
    events.push(call(3, 1, "140.82.127.200"));
    let found = audit_run(&events);
    assert!(found.is_empty(), "{found:#?}");
    // Two networks known, a third in the same provider block: not news;
    // in another block: news.
    let mut two: Vec<_> = (0..48)
        .map(|h| call(1 + h / 24, h % 24, &format!("140.82.{}.9", 112 + h / 24)))
        .collect();
    two.push(call(3, 1, "140.82.120.7"));
    assert!(audit_run(&two).is_empty());
    two.push(call(3, 2, "91.92.109.77"));
    assert_eq!(audit_run(&two).len(), 1);
}

#[test]
fn a_bulk_storage_read_counts_objects_and_grows_as_the_read_does() {
    use serde_json::json;
    let get = |i: u32| {
        trail(
            "GetObject",
            "s3",
            json!({
                "eventTime": format!("2026-03-01T10:{:02}:{:02}Z", i / 600, (i / 10) % 60),
                "sourceIPAddress": "91.92.109.77",
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/app/s1", "accountId": "111122223333"},
                "requestParameters": {"bucketName": "users", "key": format!("u/{i}.json")},
                "resources": [
                    {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::users/u/{i}.json")},
                    {"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::users"}
                ],
            }),
        )
    };
    let events: Vec<_> = (0..5000).map(get).collect();
    let found = audit_run(&events);
    let bulk: Vec<_> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::CloudBulkRead)
        .collect();
    assert_eq!(bulk.len(), 1, "{found:#?}");
    // Objects are counted once each (not their bucket too), and the
    // finding is told again each time the read doubles: 2,000 crossed the
    // line, 4,000 is the last doubling of the 5,000 read.
    assert_eq!(bulk[0].evidence.facts["calls"], 4000);
    assert!(
        bulk[0]
            .evidence
            .summary
            .contains("read 4000 stored objects"),
        "{}",
        bulk[0].evidence.summary
    );
}

#[test]
fn watched_changes_are_low_once_a_day_per_identity_and_reads_are_not_changes() {
    use crate::finding::Severity;
    use cordon_core::FindingKind as K;
    use serde_json::json;
    let cases = [
        (
            "AuthorizeSecurityGroupIngress",
            "ec2",
            json!({"requestParameters": {"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}}}),
            "T1562.007",
            "defense-evasion",
        ),
        (
            "CreateTrafficMirrorSession",
            "ec2",
            json!({}),
            "T1040",
            "collection",
        ),
        (
            "SendCommand",
            "ssm",
            json!({"requestParameters": {"documentName": "AWS-RunShellScript"}}),
            "T1651",
            "execution",
        ),
        (
            "ScheduleKeyDeletion",
            "kms",
            json!({"requestParameters": {"keyId": "k", "pendingWindowInDays": 7}}),
            "T1485",
            "impact",
        ),
        (
            "CreateDBSnapshot",
            "rds",
            json!({}),
            "T1578.001",
            "defense-evasion",
        ),
        (
            "UpdateFunctionCode20150331v2",
            "lambda",
            json!({"requestParameters": {"functionName": "f"}}),
            "T1648",
            "execution",
        ),
        (
            "CreateRole",
            "iam",
            json!({"requestParameters": {"roleName": "r"}}),
            "T1136.003",
            "persistence",
        ),
        (
            "RunInstances",
            "ec2",
            json!({"requestParameters": {"instanceType": "p4d.24xlarge"}}),
            "T1496",
            "impact",
        ),
        (
            "TerminateInstances",
            "ec2",
            json!({"requestParameters": {"instancesSet": {"items": [{"instanceId": "i-1"}]}}}),
            "T1578.003",
            "defense-evasion",
        ),
        (
            "EnableRegion",
            "account",
            json!({"requestParameters": {"RegionName": "ap-east-1"}}),
            "T1535",
            "defense-evasion",
        ),
    ];
    for (action, service, extra, technique, stage) in cases {
        let found = audit_run(&[trail(action, service, extra)]);
        assert_eq!(found.len(), 1, "{action}: {found:#?}");
        let f = &found[0];
        assert_eq!(f.kind, K::CloudConfigChange, "{action}");
        assert_eq!(f.severity, Severity::Low, "{action}");
        assert!(
            f.techniques.contains(&technique.to_string()),
            "{action}: {:?}",
            f.techniques
        );
        assert_eq!(f.stage, stage, "{action}");
    }
    // The same identity changing security groups all morning: one finding.
    let many: Vec<_> = (0..20)
        .map(|m| {
            trail(
                "RevokeSecurityGroupIngress",
                "ec2",
                json!({"eventTime": format!("2026-03-01T09:{m:02}:00Z")}),
            )
        })
        .collect();
    assert_eq!(audit_run(&many).len(), 1);
    // Reading is not changing; image pushes and deployments are not watched.
    for (action, service, extra) in [
        ("DescribeSecurityGroups", "ec2", json!({"readOnly": true})),
        ("GetPolicy", "iam", json!({"readOnly": true})),
        ("PutImage", "ecr", json!({"readOnly": false})),
        ("UpdateService", "ecs", json!({"readOnly": false})),
        (
            "RunInstances",
            "ec2",
            json!({"requestParameters": {"instanceType": "m5.large"}}),
        ),
        // An autoscaling group terminating its instances is the service's routine.
        (
            "TerminateInstances",
            "ec2",
            json!({"userIdentity": {"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"}}),
        ),
    ] {
        let found = audit_run(&[trail(action, service, extra)]);
        assert!(found.is_empty(), "{action}: {found:#?}");
    }
}

#[test]
fn azure_operations_to_watch_are_low_changes_and_reads_are_not() {
    use cordon_core::FindingKind as K;
    let op = |action: &str| {
        let mut e = cordon_audit::AuditEvent::new(cordon_audit::Cloud::Azure, 1_772_000_000_000);
        e.account = "00000000-0000-0000-0000-000000000001".into();
        e.principal.kind = "user".into();
        e.principal.id = "ops@acme.example".into();
        e.action = action.into();
        e.service = action.split('/').next().unwrap_or_default().into();
        e
    };
    for (action, technique) in [
        (
            "Microsoft.Network/networkSecurityGroups/securityRules/write",
            "T1562.007",
        ),
        (
            "MICROSOFT.COMPUTE/VIRTUALMACHINES/RUNCOMMAND/ACTION",
            "T1651",
        ),
        (
            "microsoft.network/networkwatchers/packetcaptures/write",
            "T1040",
        ),
        ("Microsoft.Authorization/locks/delete", "T1562.001"),
        (
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "T1555.006",
        ),
        ("Microsoft.Compute/disks/beginGetAccess/action", "T1530"),
        (
            "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/delete",
            "T1490",
        ),
        ("Update conditional access policy", "T1562.001"),
        ("Add member to role in PIM completed (permanent)", "T1098"),
    ] {
        let found = audit_run(&[op(action)]);
        assert_eq!(found.len(), 1, "{action}: {found:#?}");
        assert_eq!(found[0].kind, K::CloudConfigChange, "{action}");
        assert!(
            found[0].techniques.contains(&technique.to_string()),
            "{action}: {:?}",
            found[0].techniques
        );
    }
    for action in [
        "Microsoft.Network/networkSecurityGroups/read",
        "Microsoft.Compute/virtualMachines/read",
        "Microsoft.Authorization/policies/audit/action",
    ] {
        assert!(audit_run(&[op(action)]).is_empty(), "{action}");
    }
}

#[test]
fn a_bulk_read_of_storage_holding_personal_data_is_high_and_counts_sooner() {
    use serde_json::json;
    let get = |i: u32| {
        let mut e = trail(
            "GetObject",
            "s3",
            json!({
                "eventTime": format!("2026-03-01T10:{:02}:{:02}Z", i / 100, (i / 2) % 60),
                "sourceIPAddress": "91.92.109.77",
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/app/s1", "accountId": "111122223333"},
                "requestParameters": {"bucketName": "users", "key": format!("u/{i}.json")},
            }),
        );
        e.policy = Some(Box::new(cordon_audit::EventContext {
            resource_groups: vec!["users-bucket".into()],
            data: vec!["email".into(), "name".into()],
            ..cordon_audit::EventContext::default()
        }));
        e
    };
    // 600 objects: below the line for storage the policy says nothing
    // about, above it for personal data.
    let events: Vec<_> = (0..600).map(get).collect();
    let found = audit_run(&events);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, cordon_core::FindingKind::CloudBulkRead);
    assert_eq!(found[0].severity, crate::finding::Severity::High);
    assert!(
        found[0]
            .evidence
            .summary
            .contains("personal data (email, name)")
    );
    let plain: Vec<_> = events
        .into_iter()
        .map(|mut e| {
            e.policy = None;
            e
        })
        .collect();
    assert!(audit_run(&plain).is_empty());
}

#[test]
fn a_machine_identity_through_a_client_it_never_used_is_low_and_people_are_left_alone() {
    use serde_json::json;
    let call = |day: u32, hour: u32, agent: &str| {
        trail(
            "GetObject",
            "s3",
            json!({
                "eventTime": format!("2026-03-{day:02}T{hour:02}:00:00Z"),
                "sourceIPAddress": "10.0.3.10",
                "userAgent": agent,
                "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::111122223333:assumed-role/api/i-{day}{hour}"), "accountId": "111122223333"},
                "requestParameters": {"bucketName": "photos", "key": "k"},
            }),
        )
    };
    let mut events: Vec<_> = (0..48)
        .map(|h| call(1 + h / 24, h % 24, "aws-sdk-java/2.25.60 Linux/6.1.0"))
        .collect();
    // A new SDK version is the same client; a command line is not.
    events.push(call(3, 1, "aws-sdk-java/2.26.1 Linux/6.1.0"));
    assert!(audit_run(&events).is_empty());
    events.push(call(
        3,
        2,
        "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0",
    ));
    let found = audit_run(&events);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, crate::finding::Severity::Low);
    assert_eq!(found[0].evidence.facts["client"], "aws-cli");
    // A browser is a person's: not news.
    events.pop();
    events.push(call(3, 2, "Mozilla/5.0 (X11; Linux x86_64)"));
    assert!(audit_run(&events).is_empty());
}

#[test]
fn gcp_methods_to_watch_are_low_changes() {
    let call = |method: &str| {
        let mut e = cordon_audit::AuditEvent::new(cordon_audit::Cloud::Gcp, 1_772_000_000_000);
        e.account = "acme-prod".into();
        e.principal.kind = "user".into();
        e.principal.id = "ops@acme.example".into();
        e.action = method.into();
        e
    };
    for (method, technique) in [
        ("v1.compute.firewalls.insert", "T1562.007"),
        ("google.iam.admin.v1.CreateServiceAccount", "T1136.003"),
        (
            "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
            "T1098",
        ),
        ("v1.compute.instances.setMetadata", "T1021.007"),
    ] {
        let found = audit_run(&[call(method)]);
        assert_eq!(found.len(), 1, "{method}: {found:#?}");
        assert!(
            found[0].techniques.contains(&technique.to_string()),
            "{method}"
        );
    }
    for method in [
        "v1.compute.firewalls.list",
        "storage.objects.get",
        "google.iam.admin.v1.GetServiceAccount",
    ] {
        assert!(audit_run(&[call(method)]).is_empty(), "{method}");
    }
}
