//! Cordon's host agent.
//!
//! [`ruleset()`] compiles the policy for the workloads on one host (or one
//! network namespace) into a table of its own (`inet cordon`), held as data
//! ([`ruleset::Table`]): an interval set per group and address family the
//! host's rules name, loopback and the ICMPv6 that IPv6 needs on the link
//! accepted first, then the response sets' rules (always there, empty when
//! no response is in force), then `ct state established,related`, a hash
//! verdict map per protocol that sends each destination port to a chain of
//! the rules for it, deny rules before allow rules (deny overrides allow), a counter
//! on every rule, an NFLOG record with the rule's name for denied and
//! audited packets, and the policy default last.
//!
//! The main design choice: [`netlink`] loads that table by speaking
//! nf_tables netlink itself, in one batch (one transaction: all or
//! nothing, the previous table stays when a new one fails), and sends a
//! change that only touches set elements as just those elements. `nft`
//! would take twice as long for a whole table of 100,000 ranges, and
//! rebuild the table for every change. The same table also renders as an
//! `nft -f` script ([`ruleset::Table::script`]); a test loads both and
//! compares what the kernel lists. [`flows`] turns conntrack and NFLOG into
//! flow records and cuts connections a new ruleset revokes. [`lab`] builds
//! a small topology of namespaces on a bridge to prove it with real
//! packets.
//!
//! ```
//! use std::sync::Arc;
//! use cordon_policy::{CompiledPolicy, LoadOptions, parse_policy};
//!
//! let policy = parse_policy(
//!     "policy.yaml",
//!     "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: doc}\nspec:\n  default: deny\n  groups:\n    db: {cidrs: [10.0.2.0/24]}\n    api: {cidrs: [10.0.3.0/24]}\n  rules:\n    - {name: api-to-db, from: [api], to: [db], ports: [tcp/5432], action: allow}\n",
//!     &LoadOptions::default(),
//! )
//! .unwrap();
//! let compiled = CompiledPolicy::new(Arc::new(policy));
//! let r = cordon_agent::ruleset(&compiled, &["10.0.2.10".parse().unwrap()], false).unwrap();
//! let script = r.script();
//! assert!(script.contains("elements = { 10.0.3.0/24 }"));
//! assert!(script.contains("5432 : jump input_p0"));
//! assert!(script.contains("cordon deny default"));
//! ```
//!
//! Hostnames (FQDN groups): exact names are resolved when the ruleset is
//! compiled (the caller's resolver: a hosts file, a DNS server whose
//! answers' TTLs say when to resolve again, or the system resolver, which
//! gives no TTL and is asked every minute), and their addresses become set
//! elements. Names that answer differently to different clients (CDNs) are
//! not enforced exactly; wildcard patterns cannot be resolved at all and
//! are reported as not enforced. The egress gateway, which sees the names
//! themselves, is where names are decided exactly.

pub mod daemon;
pub mod flows;
pub mod lab;
pub mod netlink;
pub mod ruleset;

pub use daemon::{Agent, AgentConfig, AgentError, AgentEvent};
pub use ruleset::{Ruleset, RulesetError, ruleset, ruleset_resolving, ruleset_with_responses};
