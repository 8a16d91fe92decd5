//! Cloud audit logs as they arrive: any bytes (JSON of any shape, gzip or
//! not) through the format sniffer, the splitter and every cloud's
//! normaliser, then detection and OCSF. Read or skipped with a place,
//! never a panic, never a record held past its limit.
#![no_main]

use cordon_audit::split::{Piece, split};
use cordon_detect::Engine;
use cordon_detect::config::Config;
use cordon_detect::kb::Kb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cordon_audit::sniff(data);
    let _ = split(data, 4096, &mut |piece| {
        if let Piece::Record(bytes, _) = piece {
            assert!(bytes.len() <= 4096);
        }
    });
    let Ok(kb) = Kb::embedded() else { return };
    let mut engine = Engine::new(Config::default(), kb, None);
    let _ = cordon_audit::read_events("fuzz", Box::new(std::io::Cursor::new(data.to_vec())), 0, &mut |e, _| {
        let _ = cordon_audit::ocsf::event(&e);
        engine.observe_event(&e);
    });
    let _ = engine.finish();
});
