//! Cloud audit logs as they arrive: any bytes (JSON of any shape, gzip or
//! not) through the format sniffer, the splitter and every cloud's
//! normaliser, then detection and OCSF. Read or skipped with a place,
//! never a panic, never a record held past its limit; whole lines taken
//! as records give what splitting every byte gives.
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
    // Lines read whole give what splitting every byte gives.
    let run = |lines: bool| {
        let mut events = Vec::new();
        let report = cordon_audit::read::read_with(
            "fuzz",
            Box::new(std::io::Cursor::new(data.to_vec())),
            0,
            &mut |e, at| events.push((at, e)),
            lines,
            true,
        )
        .map_err(|e| e.to_string());
        (events, report)
    };
    assert_eq!(run(true), run(false));
    let Ok(kb) = Kb::embedded() else { return };
    let mut engine = Engine::new(Config::default(), kb, None);
    let _ = cordon_audit::read_events("fuzz", Box::new(std::io::Cursor::new(data.to_vec())), 0, &mut |e, _| {
        let _ = cordon_audit::ocsf::event(&e);
        engine.observe_event(&e);
    });
    let _ = engine.finish();
});
