//! Snapshot tests of error messages: every `tests/errors/NAME.yaml` policy
//! is invalid, and the full error output must equal `NAME.expected`.
//! Run with `UPDATE_SNAPSHOTS=1` to rewrite the snapshots after a deliberate
//! change, then review the diff.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use std::path::{Path, PathBuf};

use cordon_policy::{LoadOptions, load_policy};

#[test]
fn error_messages_match_snapshots() {
    let dir = Path::new("tests/errors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".yaml") && !name.ends_with(".inventory.yaml")
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the error corpus, found {files:?}"
    );
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut mismatches = Vec::new();
    for file in files {
        let err = match load_policy(&file, &LoadOptions::default()) {
            Ok(_) => panic!("{} should be invalid", file.display()),
            Err(e) => e,
        };
        let got = format!("{err}\n");
        let expected_path = file.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            mismatches.push(format!(
                "== {}\n-- expected\n{expected}-- got\n{got}",
                file.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "error messages changed (UPDATE_SNAPSHOTS=1 to accept):\n{}",
        mismatches.join("\n")
    );
}
