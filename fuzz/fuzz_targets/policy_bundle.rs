//! Any bytes offered as a signed policy bundle: refused with a reason (or,
//! never in practice, opened), never a panic, a hang or memory beyond the
//! bundle limits. The archive reader is what runs before any signature.
#![no_main]

use libfuzzer_sys::fuzz_target;

const TRUSTED: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = cordon_policy::bundle::PublicKey::from_pem(TRUSTED)
        && let Ok(bundle) = cordon_policy::bundle::open(data, &[key])
    {
        let _ = bundle.policy();
    }
});
