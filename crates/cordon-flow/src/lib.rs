//! Cordon's flow pipeline: every flow seen, in one shape.
//!
//! Cloud flow logs (AWS, GCP, Azure), Zeek, Hubble, NetFlow/IPFIX and
//! Cordon's own enforcement points are decoded into one [`Flow`] type,
//! oriented so the source is the initiator, and enriched with workloads,
//! groups, vendor and the policy verdict. Decoders stream: memory is bounded
//! by the longest line (or, for whole-document formats, the document) and
//! malformed records are counted with their location, never fatal.
//!
//! The main design choice is that a decoder is a small stateful function
//! from one record to flows ([`sources::LineDecoder`]); reading, limits,
//! locations, gzip and skip accounting live once in [`input`], so every
//! format gets them the same way.
//!
//! ```
//! use cordon_flow::input::{ReadOptions, read_flows};
//!
//! let log = "2 123456789010 eni-1 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n";
//! let mut flows = Vec::new();
//! let report = read_flows("vpc.log", Box::new(log.as_bytes()), &ReadOptions::default(), &mut |_, f| {
//!     flows.append(f);
//!     Ok::<_, std::convert::Infallible>(())
//! })
//! .unwrap();
//! assert_eq!((report.records, report.flows), (1, 1));
//! assert_eq!(flows[0].dst_port, 22);
//! ```

pub mod csv;
pub mod dns;
pub mod enrich;
pub mod flow;
pub mod input;
pub mod ocsf;
pub mod orient;
pub mod read;
pub mod sources;
pub mod time;

pub use flow::{
    Attrs, Direction, Enrichment, Flow, FlowSource, Name, Names, Observed, Orientation, Verdict,
};
pub use read::{Location, Report, Skip, SkipReason};
pub use sources::Format;
