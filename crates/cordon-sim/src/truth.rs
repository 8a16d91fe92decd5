//! The ground truth a simulation writes beside its flows.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One attack step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    /// Short id (`c2`, `exfiltration`...).
    pub id: String,
    /// Kill-chain stage.
    pub stage: String,
    /// What the attacker does.
    pub description: String,
    /// Finding kinds that detect this step (the first is the main one).
    pub kinds: Vec<cordon_core::FindingKind>,
    /// ATT&CK techniques of the step.
    pub techniques: Vec<String>,
    /// Sources of the step's flows.
    pub src: Vec<IpAddr>,
    /// Destinations (empty when the step sweeps many).
    pub dst: Vec<IpAddr>,
    /// Destination names, when the step uses names.
    #[serde(default)]
    pub dst_names: Vec<String>,
    /// Destination ports.
    pub ports: Vec<u16>,
    /// First flow, ms since the epoch.
    pub start_ms: i64,
    /// Last flow.
    pub end_ms: i64,
    /// Flows generated for the step.
    pub flows: u64,
}

/// What a simulation contains.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Truth {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Hours generated.
    pub hours: u32,
    /// Start, ms since the epoch.
    pub start_ms: i64,
    /// End.
    pub end_ms: i64,
    /// Attack steps, in order.
    pub steps: Vec<Step>,
}
