//! Enrichment of audit events against a policy: the groups whose cloud
//! identities made a call (and their vendor, with the address ranges it
//! declares), and the workload and groups of the address the call came
//! from, like flows get.

use std::sync::Arc;

use cordon_policy::identity::{CloudIdentity, Principal as Who};
use cordon_policy::{CompiledPolicy, Endpoint, GroupId, Hostname};
use rustc_hash::FxHashMap;

use crate::event::{AuditEvent, EventContext};

/// Distinct principals remembered before the memory starts over.
const MAX_REMEMBERED: usize = 1 << 16;

/// Enriches audit events against one compiled policy.
pub struct AuditEnricher {
    compiled: Arc<CompiledPolicy>,
    /// Every identity a group names, with the group.
    named: Vec<(GroupId, CloudIdentity)>,
    /// The address ranges each vendor group declares (with its members'),
    /// by group index.
    declared: Vec<Vec<ipnet::IpNet>>,
    /// Groups of principals already matched, by principal id, role and
    /// account (most events come from few principals).
    seen: FxHashMap<PrincipalKey, Vec<GroupId>>,
    /// Groups of storage already looked up, by its host name.
    stores: FxHashMap<String, Vec<GroupId>>,
}

/// A principal as matching sees it: its id, role, account, and the role
/// it assumes or the application it is.
type PrincipalKey = (String, Option<String>, Option<String>, Option<String>);

impl AuditEnricher {
    /// An enricher for `compiled`.
    pub fn new(compiled: Arc<CompiledPolicy>) -> Self {
        let named = compiled
            .policy()
            .groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| {
                let id = GroupId(u32::try_from(i).unwrap_or(u32::MAX));
                g.identities.iter().map(move |c| (id, c.clone()))
            })
            .collect();
        let policy = compiled.policy();
        let declared = (0..policy.groups.len())
            .map(|i| {
                let id = GroupId(u32::try_from(i).unwrap_or(u32::MAX));
                if policy.group(id).is_none_or(|g| g.vendor.is_none()) {
                    return Vec::new();
                }
                policy
                    .group_closure(id)
                    .into_iter()
                    .filter_map(|m| policy.group(m))
                    .flat_map(|m| m.cidrs.iter().copied())
                    .collect()
            })
            .collect();
        AuditEnricher {
            compiled,
            named,
            declared,
            seen: FxHashMap::default(),
            stores: FxHashMap::default(),
        }
    }

    /// The groups naming `e`'s principal.
    fn principal_groups(&mut self, e: &AuditEvent) -> Vec<GroupId> {
        if self.named.is_empty() {
            return Vec::new();
        }
        let assuming = e
            .action
            .starts_with("AssumeRole")
            .then(|| e.detail_str("requestParameters/roleArn"))
            .flatten();
        let app = e
            .detail_str("appId")
            .or_else(|| e.detail_str("properties/appId"));
        let key = (
            e.principal.id.clone(),
            e.principal.role.clone(),
            e.principal.account.clone(),
            assuming.or(app).map(str::to_string),
        );
        if let Some(groups) = self.seen.get(&key) {
            return groups.clone();
        }
        let who = Who {
            id: &e.principal.id,
            account: e.principal.account.as_deref(),
            role: e.principal.role.as_deref(),
            app,
            assuming: assuming.into_iter().collect(),
        };
        let mut groups: Vec<GroupId> = self
            .named
            .iter()
            .filter(|(_, identity)| identity.matches(&who))
            .map(|(g, _)| *g)
            .collect();
        groups.dedup();
        if self.seen.len() >= MAX_REMEMBERED {
            self.seen.clear();
        }
        self.seen.insert(key, groups.clone());
        groups
    }

    /// Enrich `e` in place: [`AuditEvent::policy`] is set when the policy
    /// knows anything about the call.
    pub fn enrich(&mut self, e: &mut AuditEvent) {
        let groups = self.principal_groups(e);
        let policy = Arc::clone(self.compiled.policy());
        let mut ctx = EventContext::default();
        for id in &groups {
            let Some(g) = policy.group(*id) else {
                continue;
            };
            ctx.groups.push(g.name.clone());
            if ctx.vendor.is_none()
                && let Some(v) = &g.vendor
            {
                ctx.vendor = Some(v.name.clone());
                ctx.declared = self.declared.get(id.index()).cloned().unwrap_or_default();
            }
        }
        if let Some(ip) = e.source_ip {
            ctx.workload = self
                .compiled
                .workload_at(ip)
                .and_then(|w| policy.workload(w))
                .map(|w| w.name.clone());
            ctx.source_groups = self
                .compiled
                .membership(&Endpoint::ip(ip))
                .iter()
                .filter_map(|g| policy.group(g))
                .filter(|g| !g.builtin)
                .map(|g| g.name.clone())
                .collect();
        }
        for host in storage_hosts(e) {
            let groups = match self.stores.get(&host) {
                Some(g) => g.clone(),
                None => {
                    let groups: Vec<GroupId> = Hostname::parse(&host)
                        .map(|h| {
                            self.compiled
                                .membership(&Endpoint::host(h))
                                .iter()
                                .collect()
                        })
                        .unwrap_or_default();
                    if self.stores.len() >= MAX_REMEMBERED {
                        self.stores.clear();
                    }
                    self.stores.insert(host, groups.clone());
                    groups
                }
            };
            for g in groups
                .iter()
                .filter_map(|g| policy.group(*g))
                .filter(|g| !g.builtin)
            {
                if !ctx.resource_groups.contains(&g.name) {
                    ctx.resource_groups.push(g.name.clone());
                }
                for d in &g.data {
                    if !ctx.data.contains(d) {
                        ctx.data.push(d.clone());
                    }
                }
            }
        }
        let known = !ctx.groups.is_empty()
            || ctx.workload.is_some()
            || !ctx.source_groups.is_empty()
            || !ctx.resource_groups.is_empty();
        e.policy = known.then(|| Box::new(ctx));
    }
}

/// The host names of the storage an event acts on: an S3 bucket
/// (virtual-hosted, with and without the region), a GCS bucket, an Azure
/// storage account's blob endpoint.
fn storage_hosts(e: &AuditEvent) -> Vec<String> {
    let mut out = Vec::new();
    for r in e.resources.iter().take(4) {
        let r = r.to_ascii_lowercase();
        let name = if let Some(rest) = r.strip_prefix("arn:aws:s3:::") {
            rest.split('/').next().unwrap_or_default().to_string()
        } else if let Some(rest) = r.strip_prefix("projects/_/buckets/") {
            let bucket = rest.split('/').next().unwrap_or_default();
            if !bucket.is_empty() {
                out.push(format!("{bucket}.storage.googleapis.com"));
            }
            continue;
        } else if let Some((_, rest)) = r.split_once("/storageaccounts/") {
            let account = rest.split('/').next().unwrap_or_default();
            if !account.is_empty() {
                out.push(format!("{account}.blob.core.windows.net"));
            }
            continue;
        } else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        out.push(format!("{name}.s3.amazonaws.com"));
        if let Some(region) = &e.region {
            out.push(format!("{name}.s3.{region}.amazonaws.com"));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Cloud;
    use cordon_policy::{LoadOptions, parse_policy};

    const POLICY: &str = r#"
apiVersion: cordon/v1
kind: Policy
metadata: {name: t}
spec:
  inventory:
    - {name: api-1, ips: [10.0.3.10], labels: {app: api}}
  groups:
    api: {labels: {app: api}}
    users-bucket:
      fqdns: [users.s3.eu-west-1.amazonaws.com]
      data: [email, name]
    mailer:
      external: true
      cidrs: [198.51.100.0/24]
      identities: ["arn:aws:iam::111122223333:role/mailer-integration", "444455556666"]
      vendor: {name: Mailer Inc}
  rules:
    - {name: r, from: [api], to: [mailer], ports: [tcp/443], action: allow}
"#;

    fn enricher() -> AuditEnricher {
        let policy = parse_policy("t.yaml", POLICY, &LoadOptions::default()).unwrap();
        AuditEnricher::new(Arc::new(CompiledPolicy::new(Arc::new(policy))))
    }

    #[test]
    fn a_vendor_role_session_names_its_vendor_and_where_it_may_come_from() {
        let mut en = enricher();
        let mut e = AuditEvent::new(Cloud::Aws, 0);
        e.principal.id = "arn:aws:sts::111122223333:assumed-role/mailer-integration/s1".into();
        e.source_ip = Some("45.137.21.9".parse().unwrap());
        en.enrich(&mut e);
        let ctx = e.policy.as_deref().unwrap();
        assert_eq!(ctx.groups, ["mailer"]);
        assert_eq!(ctx.vendor.as_deref(), Some("Mailer Inc"));
        assert_eq!(ctx.outside_declared(e.source_ip), Some(true));
        assert_eq!(
            ctx.outside_declared(Some("198.51.100.40".parse().unwrap())),
            Some(false)
        );
        // The vendor's own account assuming the role: the same vendor.
        let mut assume = AuditEvent::new(Cloud::Aws, 0);
        assume.action = "AssumeRole".into();
        assume.principal.kind = "AWSAccount".into();
        assume.principal.id = "AIDAEXAMPLE".into();
        assume.principal.account = Some("444455556666".into());
        en.enrich(&mut assume);
        assert_eq!(assume.policy.unwrap().vendor.as_deref(), Some("Mailer Inc"));
    }

    #[test]
    fn an_instance_profile_session_maps_to_its_workload_and_strangers_to_nothing() {
        let mut en = enricher();
        let mut e = AuditEvent::new(Cloud::Aws, 0);
        e.principal.id = "arn:aws:sts::210987654321:assumed-role/api/i-0abc".into();
        e.source_ip = Some("10.0.3.10".parse().unwrap());
        en.enrich(&mut e);
        let ctx = e.policy.as_deref().unwrap();
        assert_eq!(ctx.workload.as_deref(), Some("api-1"));
        assert_eq!(ctx.source_groups, ["api"]);
        assert!(ctx.groups.is_empty() && ctx.vendor.is_none());
        // The bucket read names the group classifying it, and its data.
        let mut read = AuditEvent::new(Cloud::Aws, 0);
        read.region = Some("eu-west-1".into());
        read.resources = vec!["arn:aws:s3:::users/u/1.json".into()];
        en.enrich(&mut read);
        let ctx = read.policy.as_deref().unwrap();
        assert_eq!(ctx.resource_groups, ["users-bucket"]);
        assert_eq!(ctx.data, ["email", "name"]);
        let mut stranger = AuditEvent::new(Cloud::Aws, 0);
        stranger.principal.id = "arn:aws:iam::999999999999:user/x".into();
        en.enrich(&mut stranger);
        assert!(stranger.policy.is_none());
    }
}
