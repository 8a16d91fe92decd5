//! Any bytes as an Azure or GCP document: flows or counted skips, never a
//! panic.
#![no_main]

use cordon_flow::Format;
use cordon_flow::input::{ReadOptions, read_flows};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Azure, Format::GcpArray] {
        let options = ReadOptions { format: Some(format), ..ReadOptions::default() };
        let _ = read_flows("fuzz", Box::new(std::io::Cursor::new(data.to_vec())), &options, &mut |_, _| Ok::<_, std::convert::Infallible>(()));
    }
});
