//! Cordon's policy language: one zero-trust policy for every enforcement
//! point (egress gateway, host agent, Kubernetes and Cilium exports) and for
//! the verdict stamped on every flow.
//!
//! A policy names **groups** of endpoints (by labels, CIDRs, FQDN patterns,
//! SPIFFE IDs or other groups; third parties are `external` groups with
//! vendor metadata) and **rules** between them. Semantics (DESIGN §3): deny
//! overrides allow regardless of order; no match means the policy `default`
//! (deny unless set); audit mode turns deny into would-deny.
//!
//! The main design choice is to compile the policy before deciding anything:
//! addresses and hostnames map to interned group bitsets through a swept
//! prefix table and a reversed-label trie, and rules are indexed by group and
//! port, so a decision costs a few lookups however many rules there are. A
//! deliberately naive [`reference`] evaluator states the same semantics in
//! the plainest code and is what the compiled one is tested against.
//!
//! ```
//! use std::sync::Arc;
//! use cordon_policy::{CompiledPolicy, Endpoint, LoadOptions, Protocol, Request, Verdict, parse_policy};
//!
//! let yaml = r#"
//! apiVersion: cordon/v1
//! kind: Policy
//! metadata: {name: example}
//! spec:
//!   groups:
//!     web: {cidrs: [10.0.1.0/24]}
//!     user-db: {cidrs: [10.0.2.0/24]}
//!   rules:
//!     - {name: web-to-db, from: [web], to: [user-db], ports: [tcp/5432], action: allow}
//! "#;
//! let policy = parse_policy("example.yaml", yaml, &LoadOptions::default()).unwrap();
//! let compiled = CompiledPolicy::new(Arc::new(policy));
//! let request = Request {
//!     src: Endpoint::ip("10.0.1.10".parse().unwrap()),
//!     dst: Endpoint::ip("10.0.2.5".parse().unwrap()),
//!     protocol: Protocol::TCP,
//!     port: 5432,
//! };
//! assert_eq!(compiled.evaluate(&request).verdict, Verdict::Allow);
//! let ssh = Request { port: 22, ..request };
//! assert_eq!(compiled.evaluate(&ssh).verdict, Verdict::Deny);
//! ```

pub mod bundle;
pub mod compile;
pub mod decision;
pub mod diff;
pub mod explain;
pub mod export;
pub mod fmt;
pub mod identity;
pub mod inventory;
pub mod lint;
pub mod load;
pub mod model;
pub mod ports;
pub mod raw;
pub mod reference;
pub mod resolve;
pub mod source;
pub mod synthetic;
pub mod terms;

pub use compile::CompiledPolicy;
pub use cordon_core::{FqdnPattern, Hostname, HostnameError, Protocol, Verdict};
pub use decision::{Decision, Endpoint, GroupSet, InvalidRequest, Reason, Request};
pub use explain::{Explanation, explain};
pub use identity::CloudIdentity;
pub use load::{LoadOptions, PolicyError, load_policy, parse_policy};
pub use model::{Action, Group, GroupId, Mode, Policy, Rule, RuleId, Workload, WorkloadId};
pub use ports::PortRange;
pub use source::{BundleOrigin, Origin, PolicySource};

#[cfg(test)]
mod tests;
