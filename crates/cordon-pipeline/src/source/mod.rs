//! Where flows come from: files and standard input, the NetFlow/IPFIX
//! socket, and the store itself. Each source drives a [`crate::Pipeline`]
//! and tells it how far it got, so the store commits flows together with
//! the position an interrupted run resumes from.

pub mod cloud_audit;
pub mod file;
pub mod netflow;
pub mod stored;
