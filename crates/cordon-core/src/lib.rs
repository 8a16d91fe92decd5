//! Cordon's ground floor: the words every other crate shares.
//!
//! Addresses in one canonical form and the ranges behind the built-in
//! groups ([`ip`]), hostnames and FQDN patterns ([`hostname`]), IP
//! protocols with the one table of their names ([`protocol`]), byte sizes
//! and durations ([`units`]), hosts(5) files and the DNS resolver
//! ([`hosts`], [`resolve`]), and the typed contracts that cross crate
//! boundaries: [`Verdict`], [`WellKnownGroup`], [`FindingKind`],
//! [`Direction`] and [`Orientation`].
//!
//! The main design choice is that nothing here knows about policies, flows
//! or stores: this crate depends on no other Cordon crate, so every crate
//! can speak in these types without a cycle, and a verdict or a finding
//! kind is an enum from the parser that reads it to the printer that
//! writes it, never a string compared as text.
//!
//! ```
//! use cordon_core::{FindingKind, Protocol, Verdict, ip};
//!
//! let verdict: Verdict = "would-deny".parse().unwrap();
//! assert!(verdict.passes() && verdict.is_denial());
//! assert_eq!(Protocol::from_any_name("ipv6-icmp"), Some(Protocol::ICMPV6));
//! assert!(FindingKind::CloudExfiltration.is_exfiltration());
//! assert!(ip::is_internet("8.8.8.8".parse().unwrap()));
//! assert!(!ip::is_internet("::ffff:10.0.0.1".parse().unwrap()));
//! ```

pub mod direction;
pub mod finding_kind;
pub mod group;
pub mod hostname;
pub mod hosts;
pub mod invalid;
pub mod ip;
pub mod protocol;
pub mod resolve;
pub mod units;
pub mod verdict;

pub use direction::{Direction, Orientation};
pub use finding_kind::FindingKind;
pub use group::{Name, Names, WellKnownGroup, first_user_group};
pub use hostname::{FqdnPattern, Hostname, HostnameError};
pub use hosts::Hosts;
pub use invalid::InvalidValue;
pub use ip::canonical_ip;
pub use protocol::Protocol;
pub use verdict::Verdict;
