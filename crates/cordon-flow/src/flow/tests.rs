use super::*;

#[test]
fn attributes_keep_order_and_are_found_by_key() {
    let mut a = Attrs::default();
    assert!(a.is_empty());
    a.push("interface_id", "eni-1");
    a.push("tcp_flags", "18");
    a.push("empty", "");
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        [
            ("interface_id", "eni-1"),
            ("tcp_flags", "18"),
            ("empty", "")
        ]
    );
    assert_eq!(a.get("tcp_flags"), Some("18"));
    assert_eq!(a.get("empty"), Some(""));
    // A key that is a prefix of another is not mistaken for it.
    assert_eq!(a.get("tcp"), None);
    assert_eq!(a.get("interface_id="), None);
}

#[test]
fn separators_in_outside_text_are_replaced_not_trusted() {
    let mut a = Attrs::default();
    a.push("k=ey\u{1f}x", "va=lue\u{1f}tail");
    a.push("ünï", "çödé");
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        [("k_ey_x", "va=lue tail"), ("ünï", "çödé")]
    );
    assert_eq!(Attrs::from_encoded(a.as_encoded()), a);
}

#[test]
fn attributes_serialise_as_pairs_and_back() {
    let mut f = Flow::new(
        FlowSource::Aws,
        "10.0.0.1".parse().unwrap(),
        "10.0.0.2".parse().unwrap(),
        6,
    );
    f.attr("tcp_flags", "2");
    f.attr("reporter", "SRC");
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(
        json["attrs"],
        serde_json::json!([["tcp_flags", "2"], ["reporter", "SRC"]])
    );
    let back: Flow = serde_json::from_value(json).unwrap();
    assert_eq!(back, f);
    // No attributes: the field is left out and reads back empty.
    let bare = Flow::new(FlowSource::Zeek, f.src_ip, f.dst_ip, 17);
    let json = serde_json::to_value(&bare).unwrap();
    assert!(json.get("attrs").is_none());
    assert_eq!(serde_json::from_value::<Flow>(json).unwrap(), bare);
}

#[test]
fn attribute_lookups_match_whole_keys_only() {
    let mut a = Attrs::default();
    a.push("zeek", "x");
    a.push("zeek_log", "open_conn");
    a.push("z", "1");
    a.push("", "blank");
    assert_eq!(a.get("zeek_log"), Some("open_conn"));
    assert_eq!(a.get("zeek"), Some("x"));
    assert_eq!(a.get("z"), Some("1"));
    assert_eq!(a.get("zee"), None);
    assert_eq!(a.get("zeek_log_x"), None);
    assert_eq!(a.get(""), Some("blank"));
    assert_eq!(Attrs::default().get("zeek"), None);
    let mut b = Attrs::default();
    b.push("k", "");
    assert_eq!(b.get("k"), Some(""));
}
