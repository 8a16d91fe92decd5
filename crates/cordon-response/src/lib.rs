//! Cordon's responses: the safe, reversible actions taken on a finding.
//!
//! A response is data ([`Response`]): a `quarantine` (a workload or
//! address cut off both ways except for an allow-list), a `block` (a
//! destination cut off for some or all sources) or a `throttle` (a
//! vendor's egress limit lowered), each with a reason, what it answers, who
//! made it, a TTL, a status and an audit trail. All of them live in one
//! document (`kind: Responses`, [`Responses`]) with a generation number;
//! the agent and the gateway follow that file and overlay the responses in
//! force on the policy with deny-overrides semantics ([`Overlay`]).
//!
//! The main design choice: expiry is data. A response holds until the
//! `expires` time written in it, and every reader compares that with the
//! clock, so a restart of any process, or a process that was down when the
//! time came, never brings an expired response back or keeps one alive.
//! The never-block list (the document's, plus the system's resolvers,
//! plus what each process adds: the gateway's own addresses,
//! the agent's DNS server) is checked when a response is made and again
//! wherever it is enforced.
//!
//! ```
//! use cordon_response::{NewResponse, Responses, Action, Subject, add, empty_policy};
//! use cordon_core::units::Window;
//!
//! let policy = empty_policy().unwrap();
//! let mut doc = Responses::default();
//! let quarantine = |ip: &str| NewResponse {
//!     action: Action::Quarantine { subject: Subject::Address(ip.parse().unwrap()), allow: vec![] },
//!     reason: "beaconing".into(), finding: None, incident: None,
//!     by: "cli:doc".into(), ttl: Window::parse("1h").unwrap(), propose: false,
//! };
//! let id = add(&mut doc, quarantine("203.0.113.66/32"), &policy, 0, &[]).unwrap();
//! assert!(doc.get(&id.0).unwrap().in_force(1000));
//! assert!(!doc.get(&id.0).unwrap().in_force(3_600_000));
//! // Loopback is never quarantined.
//! assert!(add(&mut doc, quarantine("127.0.0.1/32"), &policy, 0, &[]).is_err());
//! ```

pub mod document;
pub mod file;
pub mod lifecycle;
pub mod model;
pub mod overlay;
pub mod playbook;

pub use document::{DocumentError, Responses, response_json, response_json_at};
pub use lifecycle::{NewResponse, UpdateError, add, approve, empty_policy, expire_due, undo};
pub use model::{Action, Destination, Event, Peer, Response, ResponseId, Status, Subject};
pub use overlay::{
    Enforced, Kind, Overlay, PeerSet, Refused, Target, destination, system_never_block,
};
pub use playbook::Playbook;

#[cfg(test)]
mod tests;
