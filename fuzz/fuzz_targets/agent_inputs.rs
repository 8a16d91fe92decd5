//! What the agent reads from the kernel and its tools: netlink answers,
//! `conntrack -L` lines and the pcap stream of NFLOG records from tcpdump.
//! Read or skipped, never a panic, never an allocation larger than one
//! bounded record.
#![no_main]

use cordon_agent::flows::{conntrack, nflog};
use cordon_agent::netlink::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut reader) = nflog::Reader::new(data) {
        while let Ok(Some(p)) = reader.next_packet() {
            let _ = p.verdict();
        }
    }
    let _ = nflog::parse_record(data, 0);
    if let Ok(replies) = wire::replies(data) {
        for reply in replies {
            let _ = reply.error();
            for (_, value) in reply.attributes() {
                let _ = wire::udata_comment(value, 0);
                let _ = wire::be32(value);
                let _ = wire::Attributes::nested(value).count();
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let entries: Vec<_> = text.lines().filter_map(conntrack::parse_line).collect();
        let mut tracker = conntrack::Tracker::new(64);
        let _ = tracker.poll(entries, 0);
    }
});
