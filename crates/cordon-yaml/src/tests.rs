use crate::{Diagnostics, Limits, NodeKind, closest, parse, parse_with_limits};

#[test]
fn positions_are_one_based() {
    let doc = parse("a.yaml", "a:\n  b: [x, 'y']\n").unwrap();
    let b = doc.root.get("a").and_then(|a| a.get("b")).unwrap();
    assert_eq!((b.pos.line, b.pos.col), (2, 6));
    let NodeKind::Seq(items) = &b.kind else {
        panic!("expected a list")
    };
    assert_eq!(items[1].as_str(), Some("y"));
    assert_eq!((items[1].pos.line, items[1].pos.col), (2, 10));
}

#[test]
fn plain_null_spellings_are_null_but_quoted_ones_are_text() {
    let doc = parse("a.yaml", "a: ~\nb: null\nc:\nd: 'null'\n").unwrap();
    assert!(doc.root.get("a").unwrap().is_null());
    assert!(doc.root.get("b").unwrap().is_null());
    assert!(doc.root.get("c").unwrap().is_null());
    assert_eq!(doc.root.get("d").unwrap().as_str(), Some("null"));
}

#[test]
fn duplicate_keys_are_rejected_with_both_lines() {
    let err = parse("p.yaml", "a: 1\nb: 2\na: 3\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "p.yaml:3:1: duplicate key `a` (first at line 1)\n  hint: each key may appear once in a mapping"
    );
}

#[test]
fn syntax_errors_have_a_location() {
    let err = parse("p.yaml", "a: [1, 2\nb: 3\n").unwrap_err();
    assert!(err.pos.is_some());
    assert!(err.message.starts_with("invalid YAML"), "{err}");
}

#[test]
fn deep_nesting_stops_at_the_limit() {
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let err = parse("deep.yaml", &deep).unwrap_err();
    assert!(
        err.message.contains("nesting") || err.message.contains("recursion"),
        "{err}"
    );
    let block = "- ".repeat(10_000) + "x\n";
    let err = parse("block.yaml", &block).unwrap_err();
    assert!(err.message.contains("nesting"), "{err}");
}

#[test]
fn alias_bombs_hit_the_node_budget() {
    let mut doc = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    let names = ["b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let mut prev = "a";
    for name in names {
        doc.push_str(&format!(
            "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
        prev = name;
    }
    let err = parse("bomb.yaml", &doc).unwrap_err();
    assert!(err.message.contains("more than"), "{err}");
}

#[test]
fn small_aliases_expand() {
    let doc = parse("a.yaml", "base: &l {app: web}\ncopy: *l\n").unwrap();
    assert_eq!(
        doc.root
            .get("copy")
            .and_then(|c| c.get("app"))
            .and_then(|n| n.as_str()),
        Some("web")
    );
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let limits = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    let err = parse_with_limits("big.yaml", "a: 12345678901", limits).unwrap_err();
    assert!(err.message.contains("more than the limit"), "{err}");
}

#[test]
fn more_than_one_document_is_an_error() {
    let err = parse("two.yaml", "a: 1\n---\nb: 2\n").unwrap_err();
    assert_eq!(err.pos.map(|p| p.line), Some(2));
}

#[test]
fn tags_are_refused() {
    assert!(parse("t.yaml", "a: !!binary abc\n").is_err());
}

#[test]
fn unknown_fields_suggest_the_closest_known_name() {
    let doc = parse("r.yaml", "name: x\nfrm: [a]\n").unwrap();
    let mut diags = Diagnostics::new("r.yaml");
    let mut fields = doc.root.fields(&mut diags, "rule").unwrap();
    assert!(fields.get("name").is_some());
    fields.finish(&mut diags, &["name", "from", "to"]);
    assert_eq!(
        diags.render(),
        "r.yaml:2:1: unknown field `frm` in `rule`\n  hint: did you mean `from`? known fields: name, from, to"
    );
}

#[test]
fn wrong_shapes_are_reported_not_panicked_on() {
    let doc = parse("r.yaml", "a: [1]\nb: {c: d}\n").unwrap();
    let mut diags = Diagnostics::new("r.yaml");
    assert!(doc.root.get("a").unwrap().text(&mut diags, "a").is_none());
    assert!(doc.root.get("b").unwrap().items(&mut diags, "b").is_none());
    assert!(
        doc.root
            .get("b")
            .unwrap()
            .boolean(&mut diags, "b")
            .is_none()
    );
    assert_eq!(diags.len(), 3);
}

#[test]
fn suggestions_need_to_be_close() {
    assert_eq!(closest("web-tier", ["web", "api"]), Some("web"));
    assert_eq!(closest("database", ["web", "api"]), None);
    assert_eq!(closest("usr-db", ["user-db", "api"]), Some("user-db"));
    assert_eq!(closest("WEB", ["web"]), Some("web"));
}

#[test]
fn large_mappings_load_in_linear_time() {
    let doc: String = (0..200_000).map(|i| format!("k{i}: v\n")).collect();
    let parsed = parse("big.yaml", &doc).unwrap();
    let NodeKind::Map(entries) = parsed.root.kind else {
        panic!("expected a mapping")
    };
    assert_eq!(entries.len(), 200_000);
}
