//! Any bytes given as an inventory file (Cordon, AWS EC2 or Kubernetes
//! format): workloads or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cordon_policy::load::parse_inventory("fuzz.json", text);
    }
});
