//! The egress gateway's decision records.
//!
//! The gateway writes two JSON lines per connection: `event: decision` when
//! the connection is decided and `event: close` when it ends. Both are a
//! [`Flow`] (its fields at the top level) plus the gateway's own fields. The
//! flow pipeline ingests the close record, which carries the final verdict
//! and the byte counts; the decision record is counted and skipped, so a
//! connection is one flow.

use serde::{Deserialize, Serialize};

use crate::flow::Flow;

/// Which of a connection's two records this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayEvent {
    /// The connection was decided (nothing has been relayed yet).
    Decision,
    /// The connection ended; counts are final.
    Close,
}

/// One line of the gateway's decision log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GatewayRecord {
    /// Decision or close.
    pub event: GatewayEvent,
    /// The connection's id, unique for the gateway process (`g-<start>-<n>`).
    pub conn_id: String,
    /// How the client reached the gateway: `connect`, `http`,
    /// `transparent-tls` or `transparent-http`.
    pub mode: String,
    /// The connection as a flow: client address and port, the resolved
    /// destination, the requested hostname, bytes each way, start and end.
    #[serde(flatten)]
    pub flow: Flow,
    /// The client's identity: a workload name or SPIFFE ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Where the identity came from: `address`, `certificate` or `token`.
    pub identity_source: String,
    /// The client's groups.
    #[serde(default)]
    pub src_groups: Vec<String>,
    /// The destination's groups.
    #[serde(default)]
    pub dst_groups: Vec<String>,
    /// The host and port as the client asked for them.
    pub requested: String,
    /// The TLS server name the client sent, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// What the policy said.
    pub verdict: crate::flow::Verdict,
    /// The deciding rule, when a rule decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, in one word: `rule`, `default`, `ssrf`, `quota`, `dns`,
    /// `domain-fronting`, `bad-target`, `connect`, `policy-reload`, ...
    pub reason: String,
    /// Details for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Time spent resolving the name, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ms: Option<f64>,
    /// Time spent connecting upstream, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    /// The HTTP status the gateway answered with (200 for an opened tunnel).
    pub status: u16,
    /// Duration of the connection, milliseconds (close records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl GatewayRecord {
    /// The record as a flow for the pipeline: the gateway's fields become
    /// attributes. `None` for decision records (their close record follows).
    pub fn into_flow(self) -> Option<Flow> {
        if self.event == GatewayEvent::Decision {
            return None;
        }
        let mut flow = self.flow;
        flow.attrs = Default::default();
        flow.attr("conn_id", &self.conn_id);
        flow.attr("mode", &self.mode);
        if let Some(id) = &self.identity {
            flow.attr("identity", id);
        }
        flow.attr("identity_source", &self.identity_source);
        flow.attr("requested", &self.requested);
        if let Some(sni) = &self.sni {
            flow.attr("sni", sni);
        }
        flow.attr("gateway_verdict", self.verdict.as_str());
        if let Some(rule) = &self.rule {
            flow.attr("rule", rule);
        }
        flow.attr("reason", &self.reason);
        flow.attr("status", self.status.to_string());
        Some(flow)
    }
}
