//! Threat-intelligence exchange over TAXII 2.1: the media types and their
//! negotiation ([`media`]), the checks every STIX 2.1 object passes before
//! it is kept ([`object`]), and the client that pulls a collection into
//! the store incrementally and pushes objects to a collection
//! ([`client`]).

pub mod client;
pub mod media;
pub mod object;
pub mod pull;
pub mod push;
