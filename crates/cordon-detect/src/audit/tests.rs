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
    for event in &quiet {
        let found = audit_run(std::slice::from_ref(event));
        assert!(found.is_empty(), "{}: {found:#?}", event.action);
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
