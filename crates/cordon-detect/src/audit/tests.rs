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
    let news = |found: Vec<Finding>| -> Vec<Finding> {
        // Another account's role reading the bucket is told apart (once
        // a day, low): it is not what this test is about.
        found
            .into_iter()
            .filter(|f| f.kind != cordon_core::FindingKind::CloudStorageExposed)
            .collect()
    };
    assert!(news(audit_run(&early)).is_empty());
    let mut person = events[..48].to_vec();
    person.push(call(3, 2, "91.92.109.77", "Mozilla/5.0"));
    let found = news(audit_run(&person));
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

#[test]
fn objects_copied_into_another_accounts_bucket_are_data_shared() {
    use serde_json::json;
    let copy = trail(
        "CopyObject",
        "s3",
        json!({
            "requestParameters": {"bucketName": "outside", "key": "users.csv", "x-amz-copy-source": "users/users.csv"},
            "resources": [
                {"accountId": "999988887777", "ARN": "arn:aws:s3:::outside", "type": "AWS::S3::Bucket"},
                {"ARN": "arn:aws:s3:::outside/users.csv", "type": "AWS::S3::Object"},
                {"accountId": "111122223333", "ARN": "arn:aws:s3:::users", "type": "AWS::S3::Bucket"}
            ]
        }),
    );
    assert_eq!(copy.resource_accounts, ["999988887777", "111122223333"]);
    let found = audit_run(&[copy]);
    let f = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::CloudDataShared)
        .unwrap_or_else(|| panic!("no finding: {found:?}"));
    assert_eq!(f.severity, crate::finding::Severity::High);
    assert!(f.evidence.summary.contains("account 999988887777"));
}

/// The kinds, severities and techniques `events` make, in order.
fn told(events: &[cordon_audit::AuditEvent]) -> Vec<(String, String, Vec<String>)> {
    audit_run(events)
        .into_iter()
        .map(|f| {
            (
                f.kind.as_str().to_string(),
                format!("{:?}", f.severity).to_lowercase(),
                f.techniques,
            )
        })
        .collect()
}

#[test]
fn sensitive_reads_are_low_once_a_day_and_routine_ones_are_not_told() {
    use serde_json::json;
    let role = json!({"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/app/s1", "accountId": "111122223333"});
    let cases = [
        (
            "DescribeAccount",
            "organizations",
            json!({"userIdentity": role}),
            "cloud-discovery",
            "T1087.004",
        ),
        (
            "GetAlternateContact",
            "account",
            json!({"userIdentity": role}),
            "cloud-discovery",
            "T1087.004",
        ),
        (
            "GetSendQuota",
            "ses",
            json!({"userIdentity": role}),
            "cloud-discovery",
            "T1526",
        ),
        (
            "ListIdentities",
            "ses",
            json!({"userIdentity": role}),
            "cloud-discovery",
            "T1526",
        ),
        (
            "DescribeDBSnapshots",
            "rds",
            json!({"requestParameters": {"includePublic": true}}),
            "cloud-discovery",
            "T1580",
        ),
        (
            "GetCallerIdentity",
            "sts",
            json!({}),
            "cloud-discovery",
            "T1033",
        ),
        (
            "GetSessionToken",
            "sts",
            json!({}),
            "cloud-sensitive-access",
            "T1550.001",
        ),
        (
            "GetPasswordData",
            "ec2",
            json!({"requestParameters": {"instanceId": "i-1"}}),
            "cloud-sensitive-access",
            "T1552",
        ),
        (
            "DownloadDBLogFilePortion",
            "rds",
            json!({"requestParameters": {"dBInstanceIdentifier": "users"}}),
            "cloud-sensitive-access",
            "T1213",
        ),
        (
            "InvokeModel",
            "bedrock",
            json!({"userIdentity": role}),
            "cloud-sensitive-access",
            "T1496",
        ),
        (
            "GetObject",
            "s3",
            json!({"errorCode": "VpceAccessDenied", "requestParameters": {"bucketName": "users", "key": "k"}}),
            "cloud-sensitive-access",
            "T1530",
        ),
        (
            "GetObject",
            "s3",
            json!({"userIdentity": {"type": "AWSAccount", "accountId": "999988887777", "principalId": "AROA:x"}, "requestParameters": {"bucketName": "users", "key": "k"}}),
            "cloud-storage-exposed",
            "T1530",
        ),
        (
            "GetObject",
            "s3",
            json!({"sourceIPAddress": "91.92.109.77", "vpcEndpointId": "vpce-1", "eventType": "AwsVpceEvent", "requestParameters": {"bucketName": "users", "key": "k"}}),
            "cloud-sensitive-access",
            "T1530",
        ),
        (
            "PutFoundationModelEntitlement",
            "bedrock",
            json!({"userIdentity": role}),
            "cloud-config-change",
            "T1496",
        ),
    ];
    for (action, service, extra, kind, technique) in cases {
        let e = trail(action, service, extra);
        let found = told(&[e.clone(), e]);
        assert_eq!(found.len(), 1, "{action}: {found:?}");
        assert_eq!(found[0].0, kind, "{action}");
        assert_eq!(found[0].1, "low", "{action}");
        assert!(
            found[0].2.contains(&technique.to_string()),
            "{action}: {found:?}"
        );
    }
    // Daily work: who am I as a role, snapshots of one's own, sending
    // mail, one's own objects.
    for (action, service, extra) in [
        ("GetCallerIdentity", "sts", json!({"userIdentity": role})),
        (
            "DescribeDBSnapshots",
            "rds",
            json!({"requestParameters": {"dBInstanceIdentifier": "users"}}),
        ),
        ("SendEmail", "ses", json!({})),
        (
            "GetObject",
            "s3",
            json!({"requestParameters": {"bucketName": "users", "key": "k"}}),
        ),
        (
            "GetObject",
            "s3",
            json!({"sourceIPAddress": "10.0.0.1", "vpcEndpointId": "vpce-1", "requestParameters": {"bucketName": "users", "key": "k"}}),
        ),
    ] {
        assert!(
            told(&[trail(action, service, extra)]).is_empty(),
            "{action}"
        );
    }
}

#[test]
fn data_encrypted_under_another_accounts_key_or_deleted_in_bulk_is_destroyed() {
    use serde_json::json;
    let put = |key: &str| {
        trail(
            "CopyObject",
            "s3",
            json!({"requestParameters": {
                "bucketName": "users", "key": "a.csv", "x-amz-copy-source": "users/a.csv",
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id": key,
            }}),
        )
    };
    let found = told(&[put("arn:aws:kms:us-east-1:999988887777:key/k1")]);
    assert_eq!(found[0].0, "cloud-data-destroyed");
    assert_eq!(found[0].1, "high");
    assert_eq!(found[0].2, ["T1486"]);
    assert!(told(&[put("arn:aws:kms:us-east-1:111122223333:key/k1")]).is_empty());
    // Deletes: fifteen within ten minutes by an identity never seen
    // deleting is low; fourteen is nothing; a burst well above its own
    // earlier windows is medium.
    let delete = |minute: u32, n: u32| {
        trail(
            "DeleteObject",
            "s3",
            json!({"eventTime": format!("2026-03-01T{:02}:{:02}:00Z", 10 + minute / 60, minute % 60), "requestParameters": {"bucketName": "users", "key": format!("u{n}")}}),
        )
    };
    let burst: Vec<_> = (0..15).map(|n| delete(0, n)).collect();
    let found = told(&burst);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("cloud-data-destroyed", "low")
    );
    assert!(told(&burst[..14]).is_empty());
    let mut usual: Vec<_> = (0..3).map(|n| delete(0, n)).collect();
    usual.extend((0..20).map(|n| delete(30, 100 + n)));
    let found = told(&usual);
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("cloud-data-destroyed", "medium")
    );
    // Writes with keys only the caller holds, in bulk.
    let sse_c: Vec<_> = (0..20)
        .map(|n| {
            trail(
                "PutObject",
                "s3",
                json!({"requestParameters": {"bucketName": "users", "key": format!("u{n}"), "x-amz-server-side-encryption-customer-algorithm": "AES256"}}),
            )
        })
        .collect();
    let found = told(&sse_c);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].2, ["T1486"]);
}

#[test]
fn refused_calls_in_a_run_are_discovery_medium_when_they_probe_many_apis() {
    use serde_json::json;
    let denied = |action: &str, s: u32| {
        trail(
            action,
            "iam",
            json!({"eventTime": format!("2026-03-01T10:00:{s:02}Z"), "errorCode": "AccessDenied"}),
        )
    };
    let same: Vec<_> = (0..15).map(|s| denied("GetRole", s)).collect();
    let found = told(&same);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("cloud-discovery", "low")
    );
    assert!(told(&same[..14]).is_empty());
    let apis = [
        "GetRole",
        "ListUsers",
        "ListRoles",
        "GetAccountSummary",
        "ListPolicies",
    ];
    let many: Vec<_> = (0..15).map(|s| denied(apis[s as usize % 5], s)).collect();
    let found = told(&many);
    assert_eq!(
        found.last().map(|f| f.1.as_str()),
        Some("medium"),
        "{found:?}"
    );
}

#[test]
fn sign_ins_failing_at_the_second_factor_or_again_and_again_are_told() {
    use serde_json::json;
    let login = |s: u32, mfa: &str| {
        trail(
            "ConsoleLogin",
            "signin",
            json!({
                "eventTime": format!("2026-03-01T10:00:{s:02}Z"),
                "responseElements": {"ConsoleLogin": "Failure"},
                "errorMessage": "Failed authentication",
                "additionalEventData": {"MFAUsed": mfa},
            }),
        )
    };
    let found = told(&[login(0, "Yes")]);
    assert_eq!(
        found,
        [(
            "cloud-account-compromise".into(),
            "low".into(),
            vec!["T1621".into(), "T1110".into(), "T1078.004".into()]
        )]
    );
    let found = told(&[login(0, "Yes"), login(30, "Yes")]);
    assert_eq!(
        found.last().map(|f| f.1.as_str()),
        Some("medium"),
        "{found:?}"
    );
    // Wrong passwords: nothing for a few, low at ten, medium at thirty.
    assert!(told(&(0..9).map(|s| login(s, "No")).collect::<Vec<_>>()).is_empty());
    let ten = told(&(0..10).map(|s| login(s, "No")).collect::<Vec<_>>());
    assert!(
        ten.iter().all(|f| f.1 == "low") && !ten.is_empty(),
        "{ten:?}"
    );
    let thirty = told(&(0..30).map(|s| login(s, "No")).collect::<Vec<_>>());
    assert!(thirty.iter().any(|f| f.1 == "medium"), "{thirty:?}");
}

#[test]
fn an_instances_credentials_from_two_networks_are_high() {
    use serde_json::json;
    let call = |ip: &str, minute: u32| {
        trail(
            "DescribeInstances",
            "ec2",
            json!({
                "eventTime": format!("2026-03-01T10:{minute:02}:00Z"),
                "sourceIPAddress": ip,
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/web/i-0abcdef1234567890", "accountId": "111122223333"},
            }),
        )
    };
    let found = told(&[call("54.201.3.4", 0), call("54.201.3.4", 5)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "low");
    let found = told(&[call("54.201.3.4", 0), call("91.92.109.77", 5)]);
    assert!(found.iter().any(|f| f.1 == "high"), "{found:?}");
    // From inside the network: the instance itself.
    assert!(told(&[call("10.0.3.4", 0)]).is_empty());
}

#[test]
fn a_build_project_made_public_and_root_keys_for_others_are_judged() {
    use serde_json::json;
    let public = trail(
        "UpdateProjectVisibility",
        "codebuild",
        json!({"requestParameters": {"projectArn": "arn:aws:codebuild:us-east-1:111122223333:project/p", "projectVisibility": "PUBLIC_READ"}}),
    );
    let found = told(&[public]);
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("cloud-data-shared", "high")
    );
    // The root user making a key for a user: root's use is the news
    // (low), not persistence.
    let key = trail(
        "CreateAccessKey",
        "iam",
        json!({"userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"}, "requestParameters": {"userName": "ci"}}),
    );
    let found = told(&[key]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("cloud-config-change", "low")
    );
}

#[test]
fn google_and_entra_sign_ins_without_a_second_factor_are_judged() {
    use serde_json::json;
    let google = |method: &str, challenges: &[&str]| {
        cordon_audit::gcp::normalise(&json!({
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {"principalEmail": "ops@acme.example"},
                "requestMetadata": {"callerIp": "203.0.113.255"},
                "serviceName": "login.googleapis.com",
                "methodName": method,
                "resourceName": "organizations/123",
                "metadata": {"event": [{"eventName": "login", "parameter": [
                    {"name": "login_type", "value": "google_password"},
                    {"name": "login_challenge_method", "multiStrValue": challenges},
                ]}]},
            },
            "timestamp": "2026-03-01T10:00:00Z",
            "logName": "organizations/123/logs/cloudaudit.googleapis.com%2Fdata_access",
        }))
        .unwrap()
    };
    let failed = google(
        "google.login.LoginService.loginFailure",
        &["password", "idv_preregistered_phone"],
    );
    assert!(!failed.success);
    assert_eq!(told(&[failed])[0].1, "low");
    let found = told(&[google(
        "google.login.LoginService.loginSuccess",
        &["password"],
    )]);
    assert_eq!(found[0].1, "medium");
    assert!(
        told(&[google(
            "google.login.LoginService.loginSuccess",
            &["password", "totp"]
        )])
        .is_empty()
    );
    // Entra: a password-only protocol, a device code, a failed risky one.
    let entra = |props: serde_json::Value| {
        cordon_audit::azure::normalise(&json!({
            "time": "2026-03-01T10:00:00Z",
            "category": "SignInLogs",
            "operationName": "Sign-in activity",
            "callerIpAddress": "203.0.113.7",
            "tenantId": "t1",
            "properties": props,
        }))
        .unwrap()
    };
    let base = json!({"userPrincipalName": "eve@acme.example", "ipAddress": "203.0.113.7", "status": {"errorCode": 0}});
    let with = |extra: serde_json::Value| {
        let mut p = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        entra(p)
    };
    let ropc = with(
        json!({"authenticationProtocol": "ropc", "authenticationRequirement": "singleFactorAuthentication"}),
    );
    assert_eq!(told(&[ropc])[0].1, "medium");
    let mfa = with(
        json!({"authenticationProtocol": "ropc", "authenticationRequirement": "multiFactorAuthentication"}),
    );
    assert!(told(&[mfa]).is_empty());
    let device = with(json!({"authenticationProtocol": "deviceCode"}));
    let found = told(&[device]);
    assert_eq!(found[0].1, "low");
    assert!(found[0].2.contains(&"T1528".to_string()));
    let risky = with(
        json!({"status": {"errorCode": 50126}, "riskLevelDuringSignIn": "high", "riskState": "none"}),
    );
    assert_eq!(told(&[risky])[0].1, "low");
    // The higher of the two ratings counts; a dismissed risk is settled.
    let rated = |during: &str, aggregated: &str, state: &str| {
        told(&[with(
            json!({"riskLevelDuringSignIn": during, "riskLevelAggregated": aggregated, "riskState": state}),
        )])
    };
    assert_eq!(rated("none", "high", "atRisk")[0].1, "medium");
    assert_eq!(rated("none", "low", "none")[0].1, "low");
    assert!(rated("high", "high", "dismissed").is_empty());
    assert!(rated("none", "none", "none").is_empty());
}

#[test]
fn azure_layout_sweeps_policy_deployments_signed_links_and_moved_sessions_are_low() {
    use serde_json::json;
    let record = |second: u32, op: &str, ip: &str, extra: serde_json::Value| {
        let mut r = json!({
            "time": format!("2026-03-01T10:{:02}:{:02}Z", second / 60, second % 60),
            "operationName": op,
            "callerIpAddress": ip,
            "resourceId": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip",
            "properties": {"accountName": "acme"},
        });
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        cordon_audit::azure::normalise(&r).unwrap()
    };
    let reads: Vec<_> = (0..50)
        .map(|s| {
            record(
                s,
                "MICROSOFT.NETWORK/PUBLICIPADDRESSES/READ",
                "1.1.1.1",
                json!({}),
            )
        })
        .collect();
    let found = told(&reads);
    assert_eq!(
        found,
        [("cloud-discovery".into(), "low".into(), vec!["T1580".into()])]
    );
    assert!(told(&reads[..49]).is_empty());
    let deploy = record(
        0,
        "Microsoft.Authorization/policies/deployIfNotExists/action",
        "1.1.1.1",
        json!({}),
    );
    assert_eq!(
        told(&[deploy]),
        [(
            "cloud-config-change".into(),
            "low".into(),
            vec!["T1484".into()]
        )]
    );
    // A signed link from the Internet; from inside, or unsigned, nothing.
    let blob = |ip: &str, uri: &str| {
        record(
            0,
            "GetBlob",
            ip,
            json!({"category": "StorageRead", "uri": uri}),
        )
    };
    let signed =
        "https://acme.blob.core.windows.net/backups/data.zip?sv=2021-12-02&sp=rl&sig=SECRET";
    let e = blob("8.8.8.8:45123", signed);
    assert!(
        !e.detail.value().to_string().contains("SECRET"),
        "the signature is not kept"
    );
    assert_eq!(told(&[e])[0].0, "cloud-sensitive-access");
    assert!(told(&[blob("10.1.2.3:4000", signed)]).is_empty());
    assert!(
        told(&[blob(
            "8.8.8.8:45123",
            "https://acme.blob.core.windows.net/backups/data.zip"
        )])
        .is_empty()
    );
    // One sign-in session from two networks within the hour.
    let sign_in = |minute: u32, ip: &str| {
        cordon_audit::azure::normalise(&json!({
            "time": format!("2026-03-01T10:{minute:02}:00Z"),
            "category": "SignInLogs",
            "operationName": "Sign-in activity",
            "callerIpAddress": ip,
            "tenantId": "t1",
            "properties": {"userPrincipalName": "eve@acme.example", "ipAddress": ip, "sessionId": "s-1", "status": {"errorCode": 0}},
        }))
        .unwrap()
    };
    let found = told(&[sign_in(0, "81.2.69.160"), sign_in(5, "91.92.109.77")]);
    assert_eq!(
        found,
        [(
            "cloud-account-compromise".into(),
            "low".into(),
            vec!["T1550.001".into(), "T1078.004".into()]
        )]
    );
    assert!(told(&[sign_in(0, "81.2.69.160"), sign_in(5, "81.2.70.9")]).is_empty());
}

#[test]
fn storage_serving_requests_without_credentials_is_told_by_what_they_did() {
    use serde_json::json;
    let anonymous =
        json!({"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"});
    let call = |action: &str, key: Option<&str>, minute: u32, extra: serde_json::Value| {
        let mut params = json!({"bucketName": "devtest", "Host": "devtest.s3.amazonaws.com"});
        if let Some(k) = key {
            params["key"] = json!(k);
        }
        let mut record = json!({
            "eventTime": format!("2026-03-01T10:{minute:02}:00Z"),
            "sourceIPAddress": "91.92.109.77",
            "userIdentity": anonymous,
            "requestParameters": params,
        });
        for (k, v) in extra.as_object().unwrap() {
            record[k] = v.clone();
        }
        trail(action, "s3", record)
    };
    // The anonymous principal is no account: the event's account is the
    // recipient's.
    let listed = call("ListObjects", None, 0, json!({}));
    assert!(listed.unauthenticated());
    assert_eq!(listed.account, "111122223333");
    let found = told(std::slice::from_ref(&listed));
    assert_eq!(
        found,
        [(
            "cloud-storage-exposed".to_string(),
            "medium".to_string(),
            vec!["T1619".to_string(), "T1580".to_string()]
        )]
    );
    // Told once a day per bucket and kind of use, whatever the address.
    let again: Vec<_> = (0..5)
        .map(|m| {
            call(
                "HeadBucket",
                None,
                m,
                json!({"sourceIPAddress": format!("81.2.69.{}", 160 + m)}),
            )
        })
        .chain([listed])
        .collect();
    assert_eq!(told(&again).len(), 1);
    let found = audit_run(&again);
    assert_eq!(found[0].src, "anyone (no credentials)");
    assert_eq!(found[0].stage, "discovery");
    let wrote = told(&[call("PutObject", Some("hello.txt"), 0, json!({}))]);
    assert_eq!(
        (wrote[0].0.as_str(), wrote[0].1.as_str()),
        ("cloud-storage-exposed", "high")
    );
    assert_eq!(wrote[0].2, ["T1565", "T1530"]);
    let read = told(&[call("GetObject", Some("index.html"), 0, json!({}))]);
    assert_eq!(
        (read[0].0.as_str(), read[0].1.as_str()),
        ("cloud-storage-exposed", "low")
    );
    // Storage the policy says holds personal data: high for a read.
    let mut personal = call("GetObject", Some("users.csv"), 0, json!({}));
    personal.policy = Some(Box::new(cordon_audit::EventContext {
        data: vec!["email".into()],
        ..cordon_audit::EventContext::default()
    }));
    let found = audit_run(&[personal]);
    assert_eq!(found[0].severity, crate::finding::Severity::High);
    assert!(
        found[0].evidence.summary.contains("email"),
        "{}",
        found[0].evidence.summary
    );
    // Refused: strangers knocking on closed storage are not told; nor is a
    // signed call, nor an anonymous call to anything but storage.
    assert!(
        told(&[call(
            "ListObjects",
            None,
            0,
            json!({"errorCode": "AccessDenied"})
        )])
        .is_empty()
    );
    assert!(
        told(&[trail(
            "ListObjects",
            "s3",
            json!({"requestParameters": {"bucketName": "devtest"}})
        )])
        .is_empty()
    );
    assert!(
        told(&[trail(
            "DescribeRegions",
            "ec2",
            json!({"userIdentity": anonymous})
        )])
        .is_empty()
    );
    // Another account's identity (CloudTrail's `AWSAccount` caller): low
    // for a read, medium for a write, nothing once a group names it or when
    // it is the bucket's own account.
    let foreign =
        json!({"type": "AWSAccount", "principalId": "AROAEXAMPLE:s", "accountId": "999988887777"});
    let read = told(&[call(
        "GetObject",
        Some("a.csv"),
        0,
        json!({"userIdentity": foreign}),
    )]);
    assert_eq!(
        read,
        [(
            "cloud-storage-exposed".to_string(),
            "low".to_string(),
            vec!["T1530".to_string(), "T1537".to_string()]
        )]
    );
    let wrote = told(&[call(
        "PutObject",
        Some("a.csv"),
        0,
        json!({"userIdentity": foreign}),
    )]);
    assert_eq!(wrote[0].1, "medium");
    let mut partner = call(
        "GetObject",
        Some("a.csv"),
        0,
        json!({"userIdentity": foreign}),
    );
    partner.policy = Some(Box::new(cordon_audit::EventContext {
        groups: vec!["mail-vendor".into()],
        vendor: Some("mailer".into()),
        ..cordon_audit::EventContext::default()
    }));
    assert!(
        audit_run(&[partner])
            .iter()
            .all(|f| f.kind != cordon_core::FindingKind::CloudStorageExposed)
    );
    let own =
        json!({"type": "AWSAccount", "principalId": "AROAEXAMPLE:s", "accountId": "111122223333"});
    assert!(
        told(&[call(
            "GetObject",
            Some("a.csv"),
            0,
            json!({"userIdentity": own})
        )])
        .is_empty()
    );
    // With no recipient recorded, another account's caller is still not
    // the event's account.
    let mut record = json!({
        "eventVersion": "1.08", "eventTime": "2026-03-01T10:00:00Z", "eventSource": "s3.amazonaws.com",
        "eventName": "ListObjects", "sourceIPAddress": "91.92.109.77", "userIdentity": foreign,
        "requestParameters": {"bucketName": "devtest"},
    });
    assert_eq!(
        cordon_audit::cloudtrail::normalise(&record)
            .unwrap()
            .account,
        ""
    );
    record["userIdentity"] = anonymous.clone();
    assert_eq!(
        cordon_audit::cloudtrail::normalise(&record)
            .unwrap()
            .account,
        ""
    );
    // Azure storage logs name the authentication; a listing of a
    // container with none is the same finding.
    let azure = cordon_audit::azure::normalise(&json!({
        "time": "2026-03-01T10:00:00Z",
        "resourceId": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct/blobServices/default",
        "category": "StorageRead",
        "operationName": "ListBlobs",
        "statusText": "Success",
        "callerIpAddress": "91.92.109.77:50000",
        "identity": {"type": "Anonymous"},
        "uri": "https://acct.blob.core.windows.net/public?restype=container&comp=list",
    }))
    .unwrap();
    assert!(azure.unauthenticated(), "{azure:?}");
    let found = told(&[azure]);
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("cloud-storage-exposed", "medium")
    );
    // Refused by the storage (its HTTP status): not told.
    let refused = cordon_audit::azure::normalise(&json!({
        "time": "2026-03-01T10:00:00Z",
        "resourceId": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct/blobServices/default",
        "category": "StorageRead",
        "operationName": "GetBlob",
        "statusCode": 403,
        "statusText": "AnonymousAuthorizationError",
        "callerIpAddress": "91.92.109.77:50000",
        "identity": {"type": "Anonymous"},
    }))
    .unwrap();
    assert!(!refused.success);
    assert!(told(&[refused]).is_empty());
    // Cloud Storage with no principal at all.
    let gcs = cordon_audit::gcp::normalise(&json!({
        "timestamp": "2026-03-01T10:00:00Z",
        "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Fdata_access",
        "resource": {"type": "gcs_bucket", "labels": {"project_id": "p1", "bucket_name": "open"}},
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": "storage.googleapis.com",
            "methodName": "storage.objects.create",
            "resourceName": "projects/_/buckets/open/objects/x.txt",
            "authenticationInfo": {},
            "requestMetadata": {"callerIp": "91.92.109.77"},
        },
    }))
    .unwrap();
    assert!(gcs.unauthenticated(), "{gcs:?}");
    let found = audit_run(&[gcs]);
    assert_eq!(found[0].severity, crate::finding::Severity::High);
    assert_eq!(found[0].dst, "projects/_/buckets/open/objects/x.txt");
    assert_eq!(found[0].evidence.facts["bucket"], "projects/_/buckets/open");
}

#[test]
fn an_account_read_across_many_services_in_minutes_is_a_low_sweep_once() {
    use serde_json::json;
    let apis = [
        ("s3", "ListBuckets"),
        ("ec2", "DescribeInstances"),
        ("ec2", "DescribeSecurityGroups"),
        ("ec2", "DescribeVpcs"),
        ("iam", "ListUsers"),
        ("iam", "ListRoles"),
        ("lambda", "ListFunctions20150331"),
        ("rds", "DescribeDBInstances"),
        ("dynamodb", "ListTables"),
        ("secretsmanager", "ListSecrets"),
        ("ec2", "DescribeSnapshots"),
        ("iam", "ListPolicies"),
        ("ecs", "ListClusters"),
        ("sqs", "ListQueues"),
    ];
    let read = |(service, action): (&str, &str), day: u32, s: u32| {
        trail(
            action,
            service,
            json!({"eventTime": format!("2026-03-{day:02}T10:00:{s:02}Z"), "readOnly": true}),
        )
    };
    let sweeps = |events: &[cordon_audit::AuditEvent]| -> Vec<Finding> {
        audit_run(events)
            .into_iter()
            .filter(|f| {
                f.evidence.facts.get("shape").and_then(|v| v.as_str()) == Some("read sweep")
            })
            .collect()
    };
    let day1: Vec<_> = (0..14).map(|i| read(apis[i], 1, i as u32)).collect();
    let found = sweeps(&day1);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind.as_str(), "cloud-discovery");
    assert_eq!(format!("{:?}", found[0].severity), "Low");
    assert!(found[0].techniques.iter().any(|t| t == "T1580"));
    assert_eq!(
        found[0].evidence.facts["apis"].as_array().unwrap().len(),
        12
    );
    // Eleven APIs are a page of the console, not a sweep.
    assert!(sweeps(&day1[..11]).is_empty());
    // Many APIs of one service are one console page too.
    let ec2: Vec<_> = (0..20)
        .map(|i| read(("ec2", &format!("DescribeThing{i}")), 1, i))
        .collect();
    assert!(sweeps(&ec2).is_empty());
    // The same sweep the next day is the identity's habit; later that
    // day, once told, only a doubled sweep is told again.
    let mut both = day1.clone();
    both.extend((0..14).map(|i| read(apis[i], 2, i as u32)));
    assert_eq!(sweeps(&both).len(), 1);
    let mut again = day1.clone();
    again.extend((0..14).map(|i| {
        let mut e = read(apis[i], 1, i as u32);
        e.time_ms += 3_600_000;
        e
    }));
    assert_eq!(sweeps(&again).len(), 1);
    // Refused calls are the refusal rule's; calls the cloud makes for
    // someone carry no address.
    let refused: Vec<_> = (0..14)
        .map(|i| {
            let mut e = read(apis[i], 1, i as u32);
            e.success = false;
            e.error = Some("AccessDenied".into());
            e
        })
        .collect();
    assert!(sweeps(&refused).is_empty());
    let on_behalf: Vec<_> = (0..14)
        .map(|i| {
            let mut e = read(apis[i], 1, i as u32);
            e.source_ip = None;
            e.source = "cloudformation.amazonaws.com".into();
            e
        })
        .collect();
    assert!(sweeps(&on_behalf).is_empty());
}
