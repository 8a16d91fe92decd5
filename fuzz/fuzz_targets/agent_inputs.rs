//! What the agent reads from the kernel's tools: `conntrack -L` lines and
//! the pcap stream of NFLOG records from tcpdump. Read or skipped, never a
//! panic, never an allocation larger than one bounded record.
#![no_main]

use cordon_agent::flows::{conntrack, nflog};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut reader) = nflog::Reader::new(data) {
        while let Ok(Some(p)) = reader.next_packet() {
            let _ = p.verdict();
        }
    }
    let _ = nflog::parse_record(data, 0);
    if let Ok(text) = std::str::from_utf8(data) {
        let entries: Vec<_> = text.lines().filter_map(conntrack::parse_line).collect();
        let mut tracker = conntrack::Tracker::new(64);
        let _ = tracker.poll(entries, 0);
    }
});
