//! The flow filter language of the console and the API: space-separated
//! `key:value` terms, all of which must hold.
//!
//! `group:notifier port:443 proto:tcp verdict:deny vendor:"Mailer Inc"
//! src:10.0.0.0/8 dst:52.216.0.0/16 addr:10.0.4.10`

use cordon_core::{Protocol, Verdict};
use cordon_store::FlowQuery;
use ipnet::IpNet;

/// The keys the language knows, for autocompletion and errors.
pub const KEYS: [&str; 8] = [
    "group", "port", "proto", "verdict", "vendor", "src", "dst", "addr",
];

/// Split `text` into terms, keeping double-quoted values whole.
fn terms(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == ':' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some(':') {
            return Err(format!(
                "`{key}`: a term is key:value (keys: {})",
                KEYS.join(", ")
            ));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("`{key}:`: the quote is not closed")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if value.is_empty() {
            return Err(format!("`{key}:` has no value"));
        }
        out.push((key.to_ascii_lowercase(), value));
    }
}

fn net(key: &str, v: &str) -> Result<IpNet, String> {
    v.parse::<IpNet>()
        .or_else(|_| v.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{key}:{v}: not an address or CIDR"))
}

/// Apply the filter `text` to `query`.
///
/// # Errors
/// What is wrong and with which term.
pub fn apply(text: &str, query: &mut FlowQuery) -> Result<(), String> {
    if text.len() > 2000 {
        return Err("the filter is longer than 2,000 characters".to_string());
    }
    for (key, v) in terms(text)? {
        match key.as_str() {
            "group" => query.group = Some(v),
            "vendor" => query.vendor = Some(v),
            "port" => {
                query.port = Some(
                    v.parse()
                        .map_err(|_| format!("port:{v}: not a port (0-65535)"))?,
                );
            }
            "proto" | "protocol" => {
                query.protocol = Some(
                    Protocol::from_any_name(&v)
                        .map(|p| p.0)
                        .or_else(|| v.parse().ok())
                        .ok_or_else(|| {
                            format!("proto:{v}: not a protocol (tcp, udp, icmp, or a number)")
                        })?,
                );
            }
            "verdict" => {
                query.verdict = Some(
                    v.parse::<Verdict>()
                        .map_err(|_| format!("verdict:{v}: allow, deny or would-deny"))?,
                );
            }
            "src" => query.src = Some(net("src", &v)?),
            "dst" => query.dst = Some(net("dst", &v)?),
            "addr" => query.addr = Some(net("addr", &v)?),
            other => {
                return Err(format!(
                    "`{other}`: unknown key (keys: {})",
                    KEYS.join(", ")
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_become_the_query() {
        let mut q = FlowQuery::default();
        apply(
            r#"group:notifier  port:443 proto:tcp vendor:"Mailer Inc" src:10.0.0.0/8 verdict:deny"#,
            &mut q,
        )
        .unwrap();
        assert_eq!(q.group.as_deref(), Some("notifier"));
        assert_eq!(q.port, Some(443));
        assert_eq!(q.protocol, Some(6));
        assert_eq!(q.vendor.as_deref(), Some("Mailer Inc"));
        assert_eq!(q.verdict, Some(Verdict::Deny));
        assert_eq!(q.src, Some("10.0.0.0/8".parse().unwrap()));
        for (bad, says) in [
            ("port:http", "not a port"),
            ("colour:red", "unknown key"),
            ("group", "key:value"),
            ("vendor:\"Mailer", "not closed"),
            ("dst:nowhere", "not an address"),
            ("verdict:maybe", "would-deny"),
        ] {
            let e = apply(bad, &mut FlowQuery::default()).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
