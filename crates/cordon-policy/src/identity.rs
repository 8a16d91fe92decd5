//! Cloud identities a group names: the accounts, roles, keys' users,
//! service accounts and application ids that belong to it in the clouds'
//! audit logs. A vendor reaches a company through a cross-account role or
//! an API key as often as through a network path; naming those identities
//! lets audit events be enriched with the group and vendor like flows.
//!
//! Forms (matching ignores the case of emails and GUIDs, never of ARNs):
//!
//! | written | matches |
//! |---|---|
//! | `123456789012` | every principal of that AWS account |
//! | `arn:aws:iam::123456789012:role/mailer` | the role, its sessions, and calls assuming it |
//! | `arn:aws:iam::123456789012:user/ci-*` | ARNs starting with `…user/ci-` |
//! | `sync@proj.iam.gserviceaccount.com` (`serviceAccount:` allowed) | that GCP principal |
//! | `projects/proj` | every principal of that GCP project |
//! | `6f1d…-…` (a GUID) | an Azure object, application, tenant or subscription id |

use std::fmt;

/// One identity a group names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CloudIdentity {
    /// An AWS account id: every principal of the account.
    AwsAccount(String),
    /// An AWS ARN; `prefix` when written with a trailing `*`.
    AwsArn {
        /// The ARN, without the `*`.
        arn: String,
        /// Whether the ARN is a prefix.
        prefix: bool,
    },
    /// A GCP principal by email (lower case).
    Email(String),
    /// A GCP project: every principal of the project.
    GcpProject(String),
    /// An Azure object, application, tenant or subscription id (lower
    /// case).
    AzureId(String),
}

/// Why text is not a cloud identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityError {
    /// What is wrong.
    pub message: String,
    /// How to write it.
    pub hint: &'static str,
}

const HINT: &str = "write an AWS account id (12 digits), an IAM ARN (`arn:aws:iam::123456789012:role/name`, `*` at the end for a prefix), a GCP service account or project (`name@project.iam.gserviceaccount.com`, `projects/ID`) or an Azure object, application or subscription id (a GUID)";

fn is_account(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_guid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl CloudIdentity {
    /// Read one identity as written in a policy.
    ///
    /// # Errors
    /// Text that is none of the forms in the module's table.
    pub fn parse(text: &str) -> Result<CloudIdentity, IdentityError> {
        let bad = |why: &str| IdentityError {
            message: format!("invalid cloud identity `{text}`: {why}"),
            hint: HINT,
        };
        let text = text.trim();
        if is_account(text) {
            return Ok(CloudIdentity::AwsAccount(text.to_string()));
        }
        if let Some(rest) = text.strip_prefix("arn:") {
            let fields: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, region, account, resource] = fields[..] else {
                return Err(bad("an ARN has six `:`-separated fields"));
            };
            if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
                return Err(bad("the partition is aws, aws-cn or aws-us-gov"));
            }
            if !matches!(service, "iam" | "sts") || !region.is_empty() {
                return Err(bad("an identity is an `iam` or `sts` ARN (no region)"));
            }
            if !is_account(account) {
                return Err(bad("the account is 12 digits"));
            }
            let (resource, prefix) = match resource.strip_suffix('*') {
                Some(r) => (r, true),
                None => (resource, false),
            };
            if resource.contains('*') {
                return Err(bad("`*` is allowed only at the end"));
            }
            if resource.is_empty() && !prefix {
                return Err(bad("the ARN names no role, user or root"));
            }
            let arn = format!("arn:{partition}:{service}::{account}:{resource}");
            return Ok(CloudIdentity::AwsArn { arn, prefix });
        }
        if let Some(project) = text.strip_prefix("projects/") {
            let ok = (6..=30).contains(&project.len())
                && project
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            return if ok {
                Ok(CloudIdentity::GcpProject(project.to_string()))
            } else {
                Err(bad(
                    "a project id is 6 to 30 lowercase letters, digits or hyphens",
                ))
            };
        }
        let email = text
            .strip_prefix("serviceAccount:")
            .or_else(|| text.strip_prefix("user:"))
            .unwrap_or(text);
        if let Some((local, domain)) = email.split_once('@') {
            let ok = !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && email.bytes().filter(|&b| b == b'@').count() == 1
                && !email.bytes().any(|b| b.is_ascii_whitespace());
            return if ok {
                Ok(CloudIdentity::Email(email.to_ascii_lowercase()))
            } else {
                Err(bad("not an email address"))
            };
        }
        if is_guid(text) {
            return Ok(CloudIdentity::AzureId(text.to_ascii_lowercase()));
        }
        Err(bad("not a form Cordon knows"))
    }

    /// Whether this identity names the principal `who`.
    pub fn matches(&self, who: &Principal<'_>) -> bool {
        match self {
            CloudIdentity::AwsAccount(a) => who.account == Some(a.as_str()),
            CloudIdentity::AwsArn { arn, prefix } => {
                let hit = |candidate: &str| {
                    if *prefix {
                        candidate.starts_with(arn.as_str())
                    } else {
                        candidate == arn
                    }
                };
                if hit(who.id) || who.role.is_some_and(hit) || who.assuming.iter().any(|r| hit(r)) {
                    return true;
                }
                // A session of a role: arn:aws:sts::A:assumed-role/R/S is
                // role R of account A (the role's path is not in it).
                let (Some(session), Some(role)) = (
                    assumed_role(who.id),
                    arn.split_once(":role/")
                        .map(|(head, path)| (head, path.rsplit('/').next().unwrap_or(path))),
                ) else {
                    return false;
                };
                // `arn:P:sts::A` (the session's) is `arn:P:iam::A` (the role's).
                let (head, name) = role;
                head.split_once(":iam::") == session.0.split_once(":sts::")
                    && if *prefix {
                        session.1.starts_with(name)
                    } else {
                        session.1 == name
                    }
            }
            CloudIdentity::Email(e) => who.id.eq_ignore_ascii_case(e),
            CloudIdentity::GcpProject(p) => {
                who.account == Some(p.as_str())
                    || who
                        .id
                        .split_once('@')
                        .and_then(|(_, d)| d.strip_suffix(".iam.gserviceaccount.com"))
                        == Some(p.as_str())
            }
            CloudIdentity::AzureId(g) => {
                who.id.eq_ignore_ascii_case(g)
                    || who.account.is_some_and(|a| a.eq_ignore_ascii_case(g))
                    || who.app.is_some_and(|a| a.eq_ignore_ascii_case(g))
            }
        }
    }
}

/// `arn:…:sts::A:assumed-role/R/S` → (`arn:…:sts::A`, `R`).
fn assumed_role(id: &str) -> Option<(&str, &str)> {
    let (head, rest) = id.split_once(":assumed-role/")?;
    let role = rest.split('/').next()?;
    Some((head, role))
}

impl fmt::Display for CloudIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudIdentity::AwsAccount(a) => f.write_str(a),
            CloudIdentity::AwsArn { arn, prefix } => {
                write!(f, "{arn}{}", if *prefix { "*" } else { "" })
            }
            CloudIdentity::Email(e) => f.write_str(e),
            CloudIdentity::GcpProject(p) => write!(f, "projects/{p}"),
            CloudIdentity::AzureId(g) => f.write_str(g),
        }
    }
}

/// A principal as an audit event records it, for matching.
#[derive(Clone, Debug, Default)]
pub struct Principal<'a> {
    /// Its id: an ARN, an email, an object id.
    pub id: &'a str,
    /// The account, project or tenant it belongs to.
    pub account: Option<&'a str>,
    /// For a role session: the role's ARN.
    pub role: Option<&'a str>,
    /// For an Azure caller: its application id.
    pub app: Option<&'a str>,
    /// Roles the call assumes (an `AssumeRole` call's target): a call
    /// assuming a named role belongs to the role's group.
    pub assuming: Vec<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str) -> Principal<'_> {
        Principal {
            id,
            ..Principal::default()
        }
    }

    #[test]
    fn forms_are_read_and_bad_ones_say_why() {
        assert_eq!(
            CloudIdentity::parse("123456789012").unwrap(),
            CloudIdentity::AwsAccount("123456789012".into())
        );
        assert_eq!(
            CloudIdentity::parse("arn:aws:iam::123456789012:role/ops/mailer*").unwrap(),
            CloudIdentity::AwsArn {
                arn: "arn:aws:iam::123456789012:role/ops/mailer".into(),
                prefix: true
            }
        );
        assert_eq!(
            CloudIdentity::parse("serviceAccount:Sync@proj-1.iam.gserviceaccount.com").unwrap(),
            CloudIdentity::Email("sync@proj-1.iam.gserviceaccount.com".into())
        );
        assert_eq!(
            CloudIdentity::parse("projects/acme-prod").unwrap(),
            CloudIdentity::GcpProject("acme-prod".into())
        );
        assert_eq!(
            CloudIdentity::parse("6F1D2C3B-0000-4000-8000-00000000ABCD").unwrap(),
            CloudIdentity::AzureId("6f1d2c3b-0000-4000-8000-00000000abcd".into())
        );
        for (bad, why) in [
            ("12345", "not a form"),
            ("arn:aws:s3:::bucket", "`iam` or `sts`"),
            ("arn:aws:iam::12:role/x", "12 digits"),
            ("arn:aws:iam::123456789012:role/*x", "only at the end"),
            ("arn:gcp:iam::123456789012:role/x", "partition"),
            ("a@@b.com", "not an email"),
            ("projects/A", "project id"),
        ] {
            let e = CloudIdentity::parse(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn a_role_matches_its_sessions_and_calls_assuming_it_but_not_its_namesakes() {
        let role = CloudIdentity::parse("arn:aws:iam::111122223333:role/partners/mailer").unwrap();
        let session = p("arn:aws:sts::111122223333:assumed-role/mailer/s-1");
        assert!(role.matches(&session));
        assert!(!role.matches(&p("arn:aws:sts::999922223333:assumed-role/mailer/s-1")));
        assert!(!role.matches(&p("arn:aws:sts::111122223333:assumed-role/mailer-2/s-1")));
        let issuer = Principal {
            role: Some("arn:aws:iam::111122223333:role/partners/mailer"),
            ..p("x")
        };
        assert!(role.matches(&issuer));
        let assuming = Principal {
            assuming: vec!["arn:aws:iam::111122223333:role/partners/mailer"],
            ..p("arn:aws:iam::444455556666:user/automation")
        };
        assert!(role.matches(&assuming));
        let account = CloudIdentity::parse("444455556666").unwrap();
        assert!(account.matches(&Principal {
            account: Some("444455556666"),
            ..p("arn:aws:iam::444455556666:user/automation")
        }));
        assert!(!account.matches(&p("arn:aws:iam::444455556666:user/automation")));
        let prefix = CloudIdentity::parse("arn:aws:iam::111122223333:role/ci-*").unwrap();
        assert!(prefix.matches(&p("arn:aws:sts::111122223333:assumed-role/ci-deploy/run-7")));
        assert!(!prefix.matches(&p("arn:aws:sts::111122223333:assumed-role/app/run-7")));
    }

    #[test]
    fn gcp_and_azure_principals_match_by_email_project_and_id() {
        let sa = CloudIdentity::parse("sync@vendor-proj.iam.gserviceaccount.com").unwrap();
        assert!(sa.matches(&p("SYNC@vendor-proj.iam.gserviceaccount.com")));
        let project = CloudIdentity::parse("projects/vendor-proj").unwrap();
        assert!(project.matches(&p("other@vendor-proj.iam.gserviceaccount.com")));
        assert!(!project.matches(&p("other@acme.iam.gserviceaccount.com")));
        let app = CloudIdentity::parse("6f1d2c3b-0000-4000-8000-00000000abcd").unwrap();
        assert!(app.matches(&Principal {
            app: Some("6F1D2C3B-0000-4000-8000-00000000ABCD"),
            ..p("someone@acme.example")
        }));
    }
}
