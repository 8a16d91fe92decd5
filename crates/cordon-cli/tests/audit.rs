//! `cordon ingest` of cloud audit logs, `cordon audit query` and detection
//! over them, end to end on files written here: CloudTrail's delivery
//! shape gzipped, one event per line, GCP and Azure records, bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::io::Write;

use common::{cordon, ocsf_valid, stderr, stdout, temp_dir};
use serde_json::{Value, json};

fn event(i: u64, name: &str, source: &str, extra: Value) -> Value {
    let mut e = json!({
        "eventVersion": "1.09",
        "eventTime": format!("2026-03-01T10:{:02}:{:02}Z", i / 60 % 60, i % 60),
        "eventSource": format!("{source}.amazonaws.com"),
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "198.51.100.23",
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/vendor-mailer/s1",
            "accountId": "111122223333",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/vendor-mailer"}}
        },
        "recipientAccountId": "111122223333",
        "requestID": format!("req-{i}"),
        "eventID": format!("ev-{i}"),
    });
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

#[test]
fn cloudtrail_is_stored_queried_exported_and_detected_once() {
    let dir = temp_dir("audit");
    // A day's delivery file, gzipped: routine reads, then the bucket
    // opened to a foreign account and the trail stopped.
    let mut records: Vec<Value> = (0..50)
        .map(|i| event(i, "ListBuckets", "s3", json!({"readOnly": true})))
        .collect();
    records.push(event(
        60,
        "PutBucketPolicy",
        "s3",
        json!({"requestParameters": {"bucketName": "users-data", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::users-data/*"}]}}}),
    ));
    records.push(event(
        61,
        "StopLogging",
        "cloudtrail",
        json!({"requestParameters": {"name": "org-trail"}}),
    ));
    records.push(event(
        62,
        "ConsoleLogin",
        "signin",
        json!({"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ops", "accountId": "111122223333"}, "additionalEventData": {"MFAUsed": "No"}, "responseElements": {"ConsoleLogin": "Success"}}),
    ));
    let file = dir.join("111122223333_CloudTrail_eu-west-1_20260301T1000Z.json.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({"Records": records}).to_string().as_bytes())
        .unwrap();
    std::fs::write(&file, gz.finish().unwrap()).unwrap();
    let store = dir.join("store");
    let s = store.to_str().unwrap();

    let out = cordon(&[
        "ingest",
        "--store",
        s,
        "--detect",
        "--json",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["events"], 53, "{report}");
    assert_eq!(report["events_stored"], 53);
    assert_eq!(report["audit_files"][0]["clouds"]["aws"], 53);
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for k in [
        "cloud-data-shared",
        "cloud-defenses-impaired",
        "cloud-account-compromise",
    ] {
        assert!(kinds.contains(&k), "{k}: {kinds:?}");
    }
    // Ingested again: nothing read twice.
    let again = cordon(&["ingest", "--store", s, "--json", file.to_str().unwrap()]);
    let again: Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(again["audit_files"][0]["already_ingested"], true, "{again}");

    // Queries by principal, action and result.
    let q = |args: &[&str]| {
        let mut all = vec!["audit", "query", "--store", s, "--since", "0", "--json"];
        all.extend_from_slice(args);
        let out = cordon(&all);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(q(&[]).len(), 53);
    assert_eq!(q(&["--action", "s3:PutBucketPolicy"]).len(), 1);
    let mailer = q(&["--principal", "vendor-mailer"]);
    assert_eq!(mailer.len(), 52);
    assert_eq!(
        mailer[0]["principal"]["role"],
        "arn:aws:iam::111122223333:role/vendor-mailer"
    );
    assert!(q(&["--failed"]).is_empty());
    let bad = cordon(&["audit", "query", "--store", s, "--cloud", "ibm"]);
    assert_eq!(bad.status.code(), Some(2));

    // OCSF: API Activity for calls, Authentication for the sign-in, both
    // valid against the schema.
    let ocsf = cordon(&[
        "audit", "query", "--store", s, "--since", "0", "--output", "ocsf",
    ]);
    let lines: Vec<Value> = stdout(&ocsf)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (auth, api): (Vec<Value>, Vec<Value>) =
        lines.into_iter().partition(|e| e["class_uid"] == 3002);
    assert_eq!((auth.len(), api.len()), (1, 52));
    assert_eq!(auth[0]["is_mfa"], false);
    assert!(
        api.iter()
            .any(|e| e["api"]["operation"] == "StopLogging" && e["activity_id"] == 3)
    );
    for (name, events, class) in [
        ("api.ocsf.jsonl", &api, 6003),
        ("auth.ocsf.jsonl", &auth, 3002),
    ] {
        let path = dir.join(name);
        let text: Vec<String> = events.iter().map(Value::to_string).collect();
        std::fs::write(&path, text.join("\n") + "\n").unwrap();
        ocsf_valid(&path, class);
    }

    // `cordon detect` reads the stored events again.
    let out = cordon(&["detect", "--store", s, "--json"]);
    let text = stdout(&out);
    assert!(text.contains("cloud-defenses-impaired"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gcp_and_azure_logs_and_bad_audit_input() {
    let dir = temp_dir("audit-bad");
    let store = dir.join("store");
    let s = store.to_str().unwrap();
    // GCP: a sink deleted; Azure: diagnostic settings deleted (one per line).
    let gcp = json!({"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "authenticationInfo": {"principalEmail": "ops@example.com"}, "requestMetadata": {"callerIp": "203.0.113.7"}, "serviceName": "logging.googleapis.com", "methodName": "google.logging.v2.ConfigServiceV2.DeleteSink", "resourceName": "projects/p1/sinks/siem"}, "insertId": "x1", "resource": {"type": "logging_sink", "labels": {"project_id": "p1"}}, "timestamp": "2026-03-01T10:00:00Z"});
    let azure = json!({"time": "2026-03-01T10:05:00Z", "resourceId": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Insights/diagnosticSettings/siem", "operationName": "Microsoft.Insights/diagnosticSettings/delete", "category": "Administrative", "resultType": "Success", "callerIpAddress": "203.0.113.8", "identity": {"claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "ops@example.com"}}});
    let clouds = dir.join("clouds.json");
    std::fs::write(&clouds, format!("{gcp}\n{azure}\n")).unwrap();
    let out = cordon(&[
        "ingest",
        "--store",
        s,
        "--detect",
        "--json",
        clouds.to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        report["audit_files"][0]["clouds"],
        json!({"azure": 1, "gcp": 1}),
        "{report}"
    );
    let n = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "cloud-defenses-impaired")
        .count();
    assert_eq!(n, 2, "{report}");

    // A record missing its time, an unknown version and a cut line are
    // counted with their place; the good events around them are kept.
    let good = event(1, "ListBuckets", "s3", json!({}));
    let mut no_time = event(2, "ListBuckets", "s3", json!({}));
    no_time.as_object_mut().unwrap().remove("eventTime");
    let version = event(3, "ListBuckets", "s3", json!({"eventVersion": "7.0"}));
    let mixed = dir.join("mixed.json");
    std::fs::write(
        &mixed,
        format!(
            "{good}\n{no_time}\n{version}\n{{\"eventName\": \"cut\n{}\n",
            event(4, "ListBuckets", "s3", json!({}))
        ),
    )
    .unwrap();
    let out = cordon(&["ingest", "--store", s, mixed.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains("2 audit events stored"), "{text}");
    assert!(text.contains("mixed.json:2:1 (byte "), "{text}");
    assert!(text.contains("no `eventTime`"), "{text}");
    assert!(text.contains("version `7.0`"), "{text}");
    assert!(text.contains("mixed.json:4:1"), "{text}");

    // A truncated gzip: an error naming the file; what came before stays.
    let records: Vec<Value> = (0..3000)
        .map(|i| event(i, "ListBuckets", "s3", json!({})))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json!({"Records": records}).to_string().as_bytes())
        .unwrap();
    let gz = gz.finish().unwrap();
    let cut = dir.join("cut.json.gz");
    std::fs::write(&cut, &gz[..gz.len() * 3 / 4]).unwrap();
    let before = cordon(&[
        "audit", "query", "--store", s, "--since", "0", "--limit", "100000", "--json",
    ]);
    let before = stdout(&before).lines().count();
    let out = cordon(&["ingest", "--store", s, "--json", cut.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let err = report["audit_files"][0]["error"].as_str().unwrap();
    assert!(err.contains("cut.json.gz"), "{err}");
    let read = report["audit_files"][0]["stored"].as_u64().unwrap();
    assert!(read > 0 && read < 3000, "{report}");
    let after = cordon(&[
        "audit", "query", "--store", s, "--since", "0", "--limit", "100000", "--json",
    ]);
    assert_eq!(stdout(&after).lines().count() as u64, before as u64 + read);

    // JSON that is no audit event at all is an error, never `0 records`
    // in silence.
    let other = dir.join("other.json");
    std::fs::write(
        &other,
        "{\"eventName\": \"x\", \"eventSource\": \"s3.amazonaws.com\"}\n",
    )
    .unwrap();
    let out = cordon(&["ingest", "--store", s, other.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("none of its 1 records is a cloud audit event"),
        "{}",
        stdout(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
