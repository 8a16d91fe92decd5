//! Any bytes as an input of each line format (AWS, GCP lines, Zeek TSV and
//! JSON, Hubble, Cordon) and with format detection: flows or counted skips,
//! never a panic; every record is accounted for. Also as a Zeek dns.log.
#![no_main]

use cordon_flow::Format;
use cordon_flow::input::{ReadOptions, read_flows};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut dns = cordon_flow::dns::DnsAnswers::default();
    let _ = dns.read_zeek("fuzz", Box::new(std::io::Cursor::new(data.to_vec())));
    let formats = [
        None,
        Some(Format::Aws),
        Some(Format::Gcp),
        Some(Format::ZeekTsv),
        Some(Format::ZeekJson),
        Some(Format::Hubble),
        Some(Format::Cordon),
        Some(Format::IpfixFile),
        Some(Format::Pcap),
    ];
    for format in formats {
        let options = ReadOptions { format, max_line: 4096, ..ReadOptions::default() };
        let mut n = 0u64;
        if let Ok(report) = read_flows("fuzz", Box::new(std::io::Cursor::new(data.to_vec())), &options, &mut |_, f| {
            n += f.len() as u64;
            Ok::<_, std::convert::Infallible>(())
        }) {
            assert_eq!(report.flows, n);
            assert!(report.records >= report.skipped_total());
        }
    }
});
