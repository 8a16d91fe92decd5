use proptest::prelude::*;

use super::{Host, parse_authority};

proptest! {
    /// A parsed target prints back in one spelling that parses to itself.
    #[test]
    fn targets_have_one_spelling(text in "[a-zA-Z0-9.:\\[\\]%@_-]{0,40}") {
        if let Ok(t) = parse_authority(&text, Some(443)) {
            prop_assert_eq!(parse_authority(&t.to_string(), None), Ok(t));
        }
    }

    /// Bytes from a client never panic the ClientHello reader.
    #[test]
    fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = crate::sni::parse(&bytes);
        let mut tls = vec![22u8, 3, 1];
        tls.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        tls.extend_from_slice(&bytes);
        let _ = crate::sni::parse(&tls);
    }
}

#[test]
fn spellings_of_one_address() {
    for text in [
        "[::ffff:127.0.0.2]:80",
        "127.0.0.2:80",
        "[::ffff:7f00:2]:80",
    ] {
        let t = parse_authority(text, None).unwrap();
        assert_eq!(t.host, Host::Ip("127.0.0.2".parse().unwrap()), "{text}");
    }
    assert_eq!(
        parse_authority("[2001:DB8::1]:443", None)
            .unwrap()
            .to_string(),
        "[2001:db8::1]:443"
    );
}
