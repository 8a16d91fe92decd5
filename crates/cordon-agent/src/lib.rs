//! Cordon's host agent.
//!
//! [`ruleset`] compiles the policy for the workloads on one host (or one
//! network namespace) into an nftables script: a table of its own
//! (`inet cordon`), one interval set per group the host's rules name,
//! `ct state established,related` accepted first, deny rules before allow
//! rules (deny overrides allow), a counter on every rule, a log prefix on
//! denied and audited packets, and the policy default last. [`nft`] applies
//! it in one transaction (the previous ruleset stays when a new one fails)
//! and never touches tables it does not own. [`lab`] builds a small
//! topology of namespaces on a bridge to prove it with real packets.
//!
//! Hostnames (FQDN groups) are not enforced by the agent yet: a group that
//! selects only hostnames becomes an empty set, and [`Ruleset::warnings`]
//! says so. The egress gateway is where names are decided.

pub mod lab;
pub mod nft;
pub mod ruleset;

pub use ruleset::{Ruleset, RulesetError, ruleset};
