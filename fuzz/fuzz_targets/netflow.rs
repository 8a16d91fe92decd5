//! Any bytes as a sequence of NetFlow/IPFIX packets from two exporters:
//! decoded or refused with a reason, never a panic, and the template state
//! stays within its limits.
#![no_main]

use cordon_flow::sources::netflow::{Limits, NetflowDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut decoder = NetflowDecoder::with_limits(limits);
    let exporters = ["192.0.2.1:2055".parse().unwrap(), "192.0.2.2:2055".parse().unwrap()];
    // Packets are separated by the byte sequence 0xff 0x00.
    for (i, packet) in data.split(|b| *b == 0xff).enumerate() {
        let mut out = Vec::new();
        decoder.packet(exporters[i % 2], packet, i as i64 * 1000, &mut out);
    }
    assert!(decoder.template_count() <= limits.max_domains * limits.max_templates);
});
