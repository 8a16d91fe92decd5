//! Incidents: the findings on one attack path, linked by the entities they
//! share and by time ([`link`]), told as a report people can act on
//! ([`report`]), next to the register of third parties the network
//! actually talks to ([`vendors`]).
//!
//! Linking is deterministic: the same findings give the same incidents, and
//! an incident keeps its id as findings join it. Status (open,
//! acknowledged, resolved, with who, when and why) is kept by the store.
//!
//! ```
//! use cordon_detect::kb::Kb;
//! use cordon_incident::link::link;
//!
//! let kb = Kb::embedded().unwrap();
//! let linked = link(&[], &[], &kb);
//! assert!(linked.incidents.is_empty());
//! ```

pub mod export;
pub mod link;
pub mod model;
pub mod report;
pub mod vendors;

pub use model::{
    Incident, IncidentEntity, IncidentStage, Role, Status, StatusChange, UnknownStatus,
};

#[cfg(test)]
mod tests;
