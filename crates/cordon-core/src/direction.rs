//! Which way a flow went, and whether Cordon turned its record around.

use serde::{Deserialize, Serialize};

/// Which way the flow crossed the reporting point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Into the monitored resource.
    Ingress,
    /// Out of the monitored resource.
    Egress,
}

impl Direction {
    /// The other way.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::Ingress => Direction::Egress,
            Direction::Egress => Direction::Ingress,
        }
    }
}

/// Whether a flow's source is the side its record named as the source.
///
/// Sources that log each direction of a connection on its own (AWS, GCP,
/// NetFlow) write reply halves from the server to the client; the pipeline
/// turns those around so the source is always the initiator, and says so
/// here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Orientation {
    /// As the record had it.
    #[default]
    AsRecorded,
    /// The record was a reply; source and destination were swapped.
    Reversed,
}

impl Orientation {
    /// Whether the record was turned around.
    pub fn is_reversed(self) -> bool {
        self == Orientation::Reversed
    }

    /// `as-recorded` or `reversed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Orientation::AsRecorded => "as-recorded",
            Orientation::Reversed => "reversed",
        }
    }
}
