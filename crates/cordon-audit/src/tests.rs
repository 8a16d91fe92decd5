//! The readers on every shape audit logs come in, and on bad input.

use std::io::Write;

use crate::split::{Piece, split};
use crate::{AuditEvent, Cloud, read_events, sniff};

fn ct(name: &str, time: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"{name}","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15","requestParameters":{{"bucketName":"users-data","key":"export/1.csv"}},"additionalEventData":{{"bytesTransferredOut":52428}},"userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/vendor-mailer/sess-1","accountId":"111122223333","accessKeyId":"ASIAEXAMPLE","sessionContext":{{"sessionIssuer":{{"arn":"arn:aws:iam::111122223333:role/vendor-mailer"}},"attributes":{{"mfaAuthenticated":"false"}},"sourceIdentity":"ops@vendor.example"}}}},"recipientAccountId":"111122223333","requestID":"R1","eventID":"E-{name}"}}"#
    )
}

fn read(text: &[u8]) -> (Vec<AuditEvent>, crate::AuditReport) {
    let mut events = Vec::new();
    let report = read_events(
        "t.json",
        Box::new(std::io::Cursor::new(text.to_vec())),
        0,
        &mut |e, _| events.push(e),
    )
    .unwrap();
    (events, report)
}

#[test]
fn every_json_shape_of_cloudtrail_gives_the_same_events() {
    let a = ct("GetObject", "2026-03-01T10:00:00Z");
    let b = ct("ListObjects", "2026-03-01T10:00:05Z");
    let shapes = [
        format!(r#"{{"Records":[{a},{b}]}}"#),
        format!("[{a},\n{b}]"),
        format!("{a}\n{b}\n"),
        // Pretty-printed, one after the other.
        format!(
            "{}\n{}",
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&a).unwrap())
                .unwrap(),
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&b).unwrap())
                .unwrap()
        ),
    ];
    for text in &shapes {
        let (events, report) = read(text.as_bytes());
        assert_eq!(report.events, 2, "{text}: {report:?}");
        assert_eq!(report.skipped_total(), 0, "{report:?}");
        assert_eq!(events[0].action, "GetObject");
        assert_eq!(events[1].action, "ListObjects");
        assert_eq!(sniff(text.as_bytes()), Some(Cloud::Aws));
    }
    let (events, _) = read(shapes[0].as_bytes());
    let e = &events[0];
    assert_eq!(e.time_ms, 1_772_359_200_000);
    assert_eq!(
        (e.service.as_str(), e.account.as_str()),
        ("s3", "111122223333")
    );
    assert_eq!(e.principal.kind, "AssumedRole");
    assert_eq!(
        e.principal.role.as_deref(),
        Some("arn:aws:iam::111122223333:role/vendor-mailer")
    );
    assert_eq!(e.principal.session.as_deref(), Some("sess-1"));
    assert_eq!(
        e.principal.source_identity.as_deref(),
        Some("ops@vendor.example")
    );
    assert_eq!(e.principal.mfa, Some(false));
    assert_eq!(e.source_ip, Some("198.51.100.7".parse().unwrap()));
    assert_eq!(e.resources, ["arn:aws:s3:::users-data/export/1.csv"]);
    assert_eq!(e.bytes_out, Some(52_428));
    assert_eq!(
        e.detail_str("requestParameters/bucketName"),
        Some("users-data")
    );
    assert!(e.success);
}

#[test]
fn gzip_is_read_and_a_truncated_one_keeps_what_came_before() {
    let text = format!(
        r#"{{"Records":[{}]}}"#,
        (0..200)
            .map(|i| ct(
                "GetObject",
                &format!("2026-03-01T10:{:02}:{:02}Z", i / 60, i % 60)
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let (events, _) = read(&gz);
    assert_eq!(events.len(), 200);
    // Resuming from the 101st record's offset reads the last 100.
    let mut offsets = Vec::new();
    read_events(
        "t",
        Box::new(std::io::Cursor::new(gz.clone())),
        0,
        &mut |_, at| offsets.push(at),
    )
    .unwrap();
    let mut rest = 0;
    read_events(
        "t",
        Box::new(std::io::Cursor::new(gz.clone())),
        offsets[100],
        &mut |_, _| rest += 1,
    )
    .unwrap();
    assert_eq!(rest, 100);
    let mut n = 0;
    let cut = gz[..gz.len() / 2].to_vec();
    let err = read_events(
        "cut.json.gz",
        Box::new(std::io::Cursor::new(cut)),
        0,
        &mut |_, _| n += 1,
    )
    .unwrap_err();
    assert!(err.to_string().contains("cut.json.gz"), "{err}");
    assert!(n > 0 && n < 200, "{n} events before the cut");
}

#[test]
fn bad_records_are_counted_with_their_place_and_the_rest_kept() {
    let good = ct("GetObject", "2026-03-01T10:00:00Z");
    let no_time = good.replace(r#""eventTime":"2026-03-01T10:00:00Z","#, "");
    let version = good.replace(r#""eventVersion":"1.08""#, r#""eventVersion":"9.0""#);
    let text = format!(
        "{good}\n{no_time}\n{version}\n{{\"eventName\": \"cut\n{good}\nnot json at all\n{{\"flow\":1}}\n"
    );
    let (events, report) = read(text.as_bytes());
    assert_eq!(events.len(), 2, "{report:#?}");
    assert_eq!(report.skipped["malformed"].count, 1);
    assert!(
        report.skipped["malformed"].examples[0].starts_with("t.json:2:1"),
        "{report:#?}"
    );
    assert!(report.skipped["malformed"].examples[0].contains("eventTime"));
    assert_eq!(report.skipped["unknown-version"].count, 1);
    assert!(
        report.skipped["broken"].examples[0].starts_with("t.json:4:1"),
        "{report:#?}"
    );
    assert!(
        report.skipped["broken"].examples[1].starts_with("t.json:6:1"),
        "{report:#?}"
    );
    assert_eq!(report.skipped["not-an-event"].count, 1);
}

#[test]
fn a_record_over_the_limit_is_skipped_without_being_held() {
    let big = format!(r#"{{"eventName":"x","pad":"{}"}}"#, "a".repeat(5000));
    let text = format!("{big}\n{}\n", ct("GetObject", "2026-03-01T10:00:00Z"));
    let mut pieces = Vec::new();
    split(text.as_bytes(), 1000, &mut |p| {
        pieces.push(match p {
            Piece::Record(b, at) => format!("record {} at {at}", b.len()),
            Piece::TooLong(at, n) => format!("too long {n} at {at}"),
            Piece::Broken(at, why) => format!("broken {why} at {at}"),
        })
    })
    .unwrap();
    assert_eq!(pieces.len(), 2, "{pieces:?}");
    assert!(
        pieces[0].starts_with(&format!("too long {}", big.len())),
        "{pieces:?}"
    );
    assert!(pieces[1].starts_with("record"), "{pieces:?}");
}

#[test]
fn gcp_and_azure_records_are_read() {
    let gcp = r#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","status":{"code":7,"message":"PERMISSION_DENIED"},"authenticationInfo":{"principalEmail":"etl@proj-a.iam.gserviceaccount.com"},"requestMetadata":{"callerIp":"203.0.113.9","callerSuppliedUserAgent":"gcloud/1"},"serviceName":"storage.googleapis.com","methodName":"storage.objects.get","resourceName":"projects/_/buckets/b/objects/o"},"insertId":"i1","resource":{"type":"gcs_bucket","labels":{"project_id":"proj-a"}},"timestamp":"2022-02-15T21:51:50.071173943Z","logName":"projects/proj-a/logs/cloudaudit.googleapis.com%2Fdata_access"}"#;
    let azure = r#"{"calleripaddress":"5.5.5.5:28915","category":"StorageRead","operationName":"GetBlob","properties":{"accountName":"acct","metricResponseType":"Success","objectKey":"/acct/c/f.txt","userAgentHeader":"curl/8"},"resourceId":"/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct/blobServices/default","tenantId":"t-1","time":"2024-12-19 16:37:59.255"}"#;
    let (events, report) = read(format!("{gcp}\n{azure}\n").as_bytes());
    assert_eq!(report.events, 2, "{report:#?}");
    let g = &events[0];
    assert_eq!(
        (g.cloud, g.account.as_str(), g.action.as_str()),
        (Cloud::Gcp, "proj-a", "storage.objects.get")
    );
    assert_eq!(g.principal.kind, "serviceAccount");
    assert_eq!(g.principal.account.as_deref(), Some("proj-a"));
    assert!(!g.success);
    let a = &events[1];
    assert_eq!(
        (a.cloud, a.account.as_str(), a.service.as_str()),
        (Cloud::Azure, "sub-1", "Microsoft.Storage")
    );
    assert_eq!(a.source_ip, Some("5.5.5.5".parse().unwrap()));
    assert_eq!(a.time_ms, 1_734_626_279_255);
    assert!(a.resources.contains(&"/acct/c/f.txt".to_string()));
    assert_eq!(sniff(gcp.as_bytes()), Some(Cloud::Gcp));
    assert_eq!(sniff(azure.as_bytes()), Some(Cloud::Azure));
}

#[test]
fn flow_logs_and_other_text_are_not_audit_data() {
    for text in [
        "2 123456789012 eni-1 10.0.1.5 10.0.2.10 40000 5432 6 10 1000 1700000000 1700000060 ACCEPT OK\n",
        "#separator \\x09\n#path\tconn\n",
        r#"{"ts":1700000000.1,"uid":"C1","id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2","proto":"tcp"}"#,
        "",
        // A write-up quoting an event is not audit data.
        "# Stop a trail\n\n```json\n{\"eventName\":\"StopLogging\",\"eventSource\":\"cloudtrail.amazonaws.com\"}\n```\n",
    ] {
        assert_eq!(sniff(text.as_bytes()), None, "{text}");
    }
    // Times as SIEM exports write them are UTC.
    assert_eq!(
        crate::parse_time("2025-01-21 17:39:10.000000000"),
        Some(1_737_481_150_000)
    );
    assert_eq!(
        crate::parse_time("2022-11-21 18:06:52"),
        Some(1_669_054_012_000)
    );
    assert_eq!(crate::parse_time("yesterday"), None);
    // Anonymised addresses with leading zeros are still addresses.
    assert_eq!(
        crate::address("251.234.045.249"),
        Some("251.234.45.249".parse().unwrap())
    );
    assert_eq!(crate::address("ec2.amazonaws.com"), None);
}

/// A reader handing out `size` bytes at a time.
struct Trickle<'a> {
    data: &'a [u8],
    size: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.size.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn records_cut_by_read_boundaries_anywhere_come_out_whole() {
    let records: Vec<String> = (0..5)
        .map(|i| ct(&format!("Get{i}"), "2026-03-01T10:00:00Z"))
        .collect();
    let shapes = [
        records.join("\n"),
        format!("{{\"Records\": [{}]}}", records.join(",\n")),
        format!("[{}]", records.join(", ")),
    ];
    let pieces = |text: &[u8], size: usize| {
        let mut out = Vec::new();
        let reader = std::io::BufReader::with_capacity(size, Trickle { data: text, size });
        split(reader, 4096, &mut |p| {
            out.push(match p {
                Piece::Record(b, at) => format!("{at} {}", String::from_utf8_lossy(b)),
                Piece::TooLong(at, n) => format!("too long {n} at {at}"),
                Piece::Broken(at, why) => format!("broken {why} at {at}"),
            })
        })
        .unwrap();
        out
    };
    for text in &shapes {
        let whole = pieces(text.as_bytes(), 1 << 20);
        assert_eq!(whole.len(), 5, "{whole:?}");
        for (i, r) in records.iter().enumerate() {
            assert!(whole[i].ends_with(r.as_str()), "{}", whole[i]);
        }
        for size in [1, 2, 3, 7, 64, 333, 1000] {
            assert_eq!(
                pieces(text.as_bytes(), size),
                whole,
                "reads of {size} bytes"
            );
        }
    }
    // The limit holds across reads too.
    let long = format!("{}\n{}", ct("Big", "2026-03-01T10:00:00Z"), records[0]);
    let small = |size| {
        let mut out = Vec::new();
        split(
            std::io::BufReader::with_capacity(
                size,
                Trickle {
                    data: long.as_bytes(),
                    size,
                },
            ),
            100,
            &mut |p| out.push(matches!(p, Piece::TooLong(..))),
        )
        .unwrap();
        out
    };
    assert_eq!(small(7), [true, true]);
    assert_eq!(small(1 << 16), [true, true]);
}

/// The fast typed reading of a CloudTrail record gives the event the JSON
/// value reading gives, field for field, on every variety a record has;
/// and a record it cannot read that way is left to the value reading.
#[test]
fn cloudtrail_read_typed_or_as_a_value_gives_the_same_event() {
    let base = ct("GetObject", "2026-03-01T10:00:00Z");
    let with = |from: &str, to: &str| base.replacen(from, to, 1);
    let records = [
        base.clone(),
        // Escapes in strings (the typed reading copies those).
        with("aws-cli/2.15", r#"aws-cli/2.15 \"quoted\" \u00e9"#),
        with(r#""mfaAuthenticated":"false""#, r#""mfaAuthenticated":true"#),
        with(r#""requestID":"R1""#, r#""requestID":"R1","readOnly":"true""#),
        with(r#""requestID":"R1""#, r#""requestID":"R1","readOnly":false,"errorCode":"AccessDenied","errorMessage":"no""#),
        with(
            r#""requestID":"R1""#,
            r#""requestID":"R1","resources":[{"ARN":"arn:aws:s3:::a"},{"arn":"arn:aws:s3:::b"},{"type":"x"}]"#,
        ),
        // Resources with their owners (one named twice, one not at all).
        with(
            r#""requestID":"R1""#,
            r#""requestID":"R1","resources":[{"ARN":"arn:aws:s3:::a","accountId":"999988887777"},{"ARN":"arn:aws:s3:::a/k"},{"ARN":"arn:aws:s3:::b","accountId":"111122223333"},{"ARN":"arn:aws:s3:::c","accountId":"999988887777"}]"#,
        ),
        with(r#""bytesTransferredOut":52428"#, r#""bytesTransferredOut":"52428","bytesTransferredIn":1.5"#),
        // An IAM user known by name only; a service calling on its own.
        base.replacen(r#""type":"AssumedRole""#, r#""type":"IAMUser""#, 1).replacen(
            r#""arn":"arn:aws:sts::111122223333:assumed-role/vendor-mailer/sess-1","#,
            r#""userName":"alice","#,
            1,
        ),
        with(
            r#""userIdentity":{"type":"AssumedRole""#,
            r#""userIdentity":{"type":"AWSService","invokedBy":"ec2.amazonaws.com""#,
        ),
        r#"{"eventVersion":"1.05","eventTime":"2026-03-01T10:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","sourceIPAddress":"203.0.113.9","responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MFAUsed":"No"},"userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root"},"sharedEventID":"s","vpcEndpointId":"vpce-1","eventType":"AwsConsoleSignIn","serviceEventDetails":{"a":1}}"#.to_string(),
        // What makes no event: the same reason either way.
        with(r#""eventVersion":"1.08""#, r#""eventVersion":"2.0""#),
        with(r#""eventTime":"2026-03-01T10:00:00Z","#, ""),
        with(r#""eventTime":"2026-03-01T10:00:00Z""#, r#""eventTime":"yesterday""#),
        with(r#""userIdentity":{"#, r#""userIdentity":null,"old":{"#),
    ];
    for text in &records {
        let value: serde_json::Value = serde_json::from_str(text).expect(text);
        let by_value = crate::cloudtrail::normalise(&value);
        let typed = crate::cloudtrail::normalise_text(text).expect(text);
        assert_eq!(typed, by_value, "{text}");
    }
    let owned = crate::cloudtrail::normalise_text(&records[6])
        .expect("read")
        .expect("event");
    assert_eq!(owned.resource_accounts, ["999988887777", "111122223333"]);
    // Not read the typed way: another cloud's record, a field of another
    // type; the value reading decides.
    let odd = [
        r#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog"}}"#
            .to_string(),
        with(r#""eventName":"GetObject""#, r#""eventName":7"#),
        with(r#""awsRegion":"eu-west-1""#, r#""awsRegion":["eu-west-1"]"#),
    ];
    for text in &odd {
        assert!(crate::cloudtrail::normalise_text(text).is_none(), "{text}");
    }
    // Read end to end, the odd-typed record is still an event.
    let (events, report) = read(format!("{}\n{}\n", odd[2], base).as_bytes());
    assert_eq!((events.len(), report.skipped_total()), (2, 0), "{report:?}");
}

/// Lines taken whole (one event per line) give exactly what splitting
/// every byte gives: the same events at the same offsets, the same
/// report, on inputs that mix one-line records with everything a line can
/// also be (a wrapper file, two records, a pretty-printed record, junk, a
/// record cut short, CRLF and trailing blanks), from any resume offset.
#[test]
fn whole_lines_read_as_splitting_every_byte_reads() {
    let a = ct("GetObject", "2026-03-01T10:00:00Z");
    let b = ct("ListObjects", "2026-03-01T10:00:05Z");
    let gcp = r#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","methodName":"storage.objects.get","authenticationInfo":{"principalEmail":"x@p.iam.gserviceaccount.com"},"serviceName":"storage.googleapis.com"},"timestamp":"2026-03-01T10:00:00Z","logName":"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access","resource":{"labels":{"project_id":"p"}}}"#;
    let inputs = [
        format!("{a}\n{b}\n"),
        format!("{a}\r\n{b}   \n{a}"),
        format!("{{\"Records\":[{a},{b}]}}\n{a}\n"),
        format!("{a} {b}\n{b}\n"),
        format!("{{\n  \"eventVersion\": \"1.08\",\n  \"x\": {{}}\n}}\n{a}\n"),
        format!("{{\"not\":\"an event\"}}\n{a}\n{{\"cut\": \"short\n{b}\n"),
        format!("{a}\n{gcp}\n{b}\n"),
        format!("{}\n{a}\n", a.replacen("1.08", "2.0", 1)),
        format!("  {a}\n\n{b}\n"),
    ];
    for input in &inputs {
        let bytes = input.as_bytes().to_vec();
        for from in [0, a.len() as u64 / 2, a.len() as u64 + 1] {
            let run = |lines: bool| {
                let mut events = Vec::new();
                let report = crate::read::read_with(
                    "t.json",
                    Box::new(std::io::Cursor::new(bytes.clone())),
                    from,
                    &mut |e, at| events.push((at, e)),
                    lines,
                    true,
                )
                .unwrap();
                (events, report)
            };
            let whole = run(true);
            assert_eq!(whole, run(false), "{input:?} from {from}");
            // Only checked (for storing): the same report, and each event
            // with its time, cloud and record, which reads back whole.
            let mut checked = Vec::new();
            let report = crate::read::read_with(
                "t.json",
                Box::new(std::io::Cursor::new(bytes.clone())),
                from,
                &mut |e, at| checked.push((at, e)),
                true,
                false,
            )
            .unwrap();
            assert_eq!(report, whole.1, "{input:?} from {from}");
            assert_eq!(checked.len(), whole.0.len());
            for ((at, e), (want_at, want)) in checked.iter().zip(&whole.0) {
                assert_eq!(
                    (at, e.time_ms, e.cloud),
                    (want_at, want.time_ms, want.cloud)
                );
                assert_eq!(e.raw, want.raw);
                let again =
                    crate::normalise(serde_json::from_str(e.raw.as_deref().unwrap()).unwrap())
                        .unwrap()
                        .unwrap();
                assert_eq!(&again.action, &want.action);
                assert_eq!(again.principal, want.principal);
                assert_eq!(again.detail, want.detail);
            }
        }
    }
}
