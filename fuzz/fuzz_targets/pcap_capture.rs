//! Any bytes as a packet capture: the capture reader, the frame parser and
//! the connection table never panic, keep the table within its bound, and
//! report every connection once. Inputs that start with a pcap or pcapng
//! magic reach past the header.
#![no_main]

use cordon_flow::sources::pcap::ConnTable;
use cordon_flow::sources::pcap::capture::CaptureReader;
use cordon_flow::sources::pcap::packet::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for magic in [&b""[..], &[0xd4, 0xc3, 0xb2, 0xa1], &[0x0a, 0x0d, 0x0d, 0x0a]] {
        let input = [magic, data].concat();
        let Ok(mut reader) = CaptureReader::new(&input[..]) else {
            continue;
        };
        let mut table = ConnTable::with_capacity(64);
        let mut out = Vec::new();
        let mut packets = 0u64;
        while let Ok(Some(p)) = reader.next_packet() {
            packets += 1;
            assert_eq!(p.number, packets);
            if let Ok(d) = parse(p.linktype, &p.data) {
                table.packet(p.time_us, &d, &mut out);
                assert!(table.len() <= 64);
            }
        }
        table.finish(&mut out);
        assert!(table.is_empty());
    }
});
