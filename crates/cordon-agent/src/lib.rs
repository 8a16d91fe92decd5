//! Cordon's host agent.
//!
//! [`ruleset`] compiles the policy for the workloads on one host (or one
//! network namespace) into an nftables script: a table of its own
//! (`inet cordon`), one interval set per group the host's rules name,
//! `ct state established,related` accepted first, a verdict map per
//! protocol that sends each destination port to the rules for it, deny
//! rules before allow rules (deny overrides allow), a counter on every
//! rule, an NFLOG record with the rule's name for denied and audited
//! packets, and the policy default last. [`flows`] turns conntrack and
//! NFLOG into flow records and cuts connections a new ruleset revokes. [`nft`] applies
//! it in one transaction (the previous ruleset stays when a new one fails)
//! and never touches tables it does not own. [`lab`] builds a small
//! topology of namespaces on a bridge to prove it with real packets.
//!
//! Hostnames (FQDN groups): exact names are resolved when the ruleset is
//! compiled (from a hosts file, or the system resolver) and their addresses
//! become set elements; the agent recompiles every minute to follow
//! changes. The system resolver gives no TTLs, so a name whose addresses
//! change faster than that, or that answers differently to different
//! clients (CDNs), is not enforced exactly; wildcard patterns cannot be
//! resolved at all and are reported as not enforced. The egress gateway,
//! which sees the names themselves, is where names are decided exactly.

pub mod flows;
pub mod lab;
pub mod netlink;
pub mod ruleset;

pub use ruleset::{Ruleset, RulesetError, ruleset, ruleset_resolving};

pub mod hosts;
