use super::encode::{self, Bound, bounds};
use super::wire::{self, Attributes, Kind, Label, Writer, nft_type};
use crate::ruleset::model::{Chain, Element, Hook, Key, Match, Rule, Set, Side, Table, Verdict};

fn set(name: &str, key: Key, elements: Vec<Element>) -> Set {
    Set {
        name: name.into(),
        key,
        map: false,
        interval: true,
        comment: Some("group x".into()),
        elements,
    }
}

fn range(first: u128, last: u128) -> Element {
    Element {
        first,
        last,
        jump: None,
    }
}

fn table(elements: Vec<Element>) -> Table {
    Table {
        comment: "managed by cordon agent; policy t".into(),
        sets: vec![set("g1_v4", Key::Ipv4, elements)],
        chains: vec![Chain {
            name: "input".into(),
            hook: Some(Hook::Input),
            rules: vec![Rule {
                matches: vec![Match::AddressIn {
                    v6: false,
                    side: Side::Source,
                    set: "g1_v4".into(),
                    negate: false,
                }],
                counter: true,
                log: Some("cordon deny r: ".into()),
                verdict: Verdict::Drop,
                comment: Some("r".into()),
            }],
        }],
    }
}

/// Every message of a batch, checked for consistent lengths.
fn messages(w: &Writer) -> Vec<(u16, Vec<u8>)> {
    wire::replies(w.bytes())
        .unwrap()
        .into_iter()
        .map(|r| (r.ty, r.payload.to_vec()))
        .collect()
}

#[test]
fn a_batch_is_framed_and_every_message_has_its_label() {
    let t = table(vec![range(10, 20), range(30, 30)]);
    let mut w = Writer::new(100, 0);
    w.batch_begin(Some(7));
    encode::replace(&mut w, &t);
    w.batch_end();
    let all = messages(&w);
    assert_eq!(all.first().unwrap().0, 0x10, "batch begin");
    assert_eq!(all.last().unwrap().0, 0x11, "batch end");
    // table, delete, table, chain, set, elements, rule
    let kinds: Vec<u16> = all[1..all.len() - 1].iter().map(|m| m.0).collect();
    assert_eq!(
        kinds,
        [
            nft_type(Kind::NewTable),
            nft_type(Kind::DelTable),
            nft_type(Kind::NewTable),
            nft_type(Kind::NewChain),
            nft_type(Kind::NewSet),
            nft_type(Kind::NewSetElem),
            nft_type(Kind::NewRule),
        ]
    );
    assert_eq!(w.labels.len(), 7);
    assert!(matches!(w.labels[6].1, Label::Rule { chain: 0, index: 0 }));
    // The batch header carries the generation, big-endian.
    let begin = wire::Reply {
        ty: 0x10,
        seq: 0,
        payload: &all[0].1,
    };
    assert_eq!(begin.attributes().get(1), Some(&7u32.to_be_bytes()[..]));
    // The set's user data: the key's byte order, then the comment.
    let set = wire::Reply {
        ty: 0,
        seq: 0,
        payload: &all[5].1,
    };
    let udata = set.attributes().get(13).unwrap();
    assert_eq!(wire::udata_comment(udata, 7).as_deref(), Some("group x"));
    // Elements: start 10, end 21, start 30, end 31.
    let elems = wire::Reply {
        ty: 0,
        seq: 0,
        payload: &all[6].1,
    };
    let list = elems.attributes().get(3).unwrap();
    let keys: Vec<(Vec<u8>, bool)> = Attributes::nested(list)
        .map(|(_, e)| {
            let e = Attributes::nested(e);
            let key = Attributes::nested(e.get(1).unwrap())
                .get(1)
                .unwrap()
                .to_vec();
            (key, e.get(3).is_some())
        })
        .collect();
    assert_eq!(
        keys,
        [
            (vec![0, 0, 0, 10], false),
            (vec![0, 0, 0, 21], true),
            (vec![0, 0, 0, 30], false),
            (vec![0, 0, 0, 31], true)
        ]
    );
}

#[test]
fn long_element_lists_are_split_under_the_attribute_limit() {
    let many: Vec<Element> = (0..20_000u128).map(|i| range(i * 4, i * 4 + 1)).collect();
    let t = table(many);
    let mut w = Writer::new(1, 0);
    encode::replace(&mut w, &t);
    let mut bounds_sent = 0;
    let mut element_messages = 0;
    for r in wire::replies(w.bytes()).unwrap() {
        if r.ty == nft_type(Kind::NewSetElem) {
            element_messages += 1;
            let list = r.attributes().get(3).unwrap();
            assert!(list.len() < usize::from(u16::MAX));
            bounds_sent += Attributes::nested(list).count();
        }
    }
    assert_eq!(bounds_sent, 40_000);
    assert!(element_messages > 10, "{element_messages}");
    let counted: usize = w
        .labels
        .iter()
        .map(|(_, l)| match l {
            Label::Elements { count, .. } => *count,
            _ => 0,
        })
        .sum();
    assert_eq!(counted, 40_000, "labels count every bound");
}

#[test]
fn bounds_end_past_each_range_except_at_the_last_key_and_maps_keep_neighbours() {
    let mut map = set("input_tcp", Key::Port, Vec::new());
    map.map = true;
    map.elements = vec![
        Element {
            first: 80,
            last: 90,
            jump: Some("input_p0".into()),
        },
        Element {
            first: 91,
            last: 65535,
            jump: Some("input_p1".into()),
        },
    ];
    let b = bounds(&map);
    assert_eq!(
        b,
        [
            Bound {
                value: 80,
                end: false,
                jump: Some("input_p0".into())
            },
            Bound {
                value: 91,
                end: true,
                jump: None
            },
            Bound {
                value: 91,
                end: false,
                jump: Some("input_p1".into())
            },
        ]
    );
}

#[test]
fn updates_carry_only_the_changed_bounds_and_nothing_when_chains_differ() {
    let old = table(vec![range(10, 20), range(30, 40)]);
    let new = table(vec![range(10, 20), range(30, 50), range(60, 60)]);
    let mut w = Writer::new(1, 0);
    let (added, removed) = encode::update(&mut w, &old, &new).unwrap();
    // 41 (old end) out; 51 (new end), 60 and 61 in.
    assert_eq!((added, removed), (3, 1));
    let kinds: Vec<u16> = wire::replies(w.bytes())
        .unwrap()
        .iter()
        .map(|r| r.ty)
        .collect();
    assert_eq!(
        kinds,
        [nft_type(Kind::DelSetElem), nft_type(Kind::NewSetElem)],
        "removals first"
    );
    let mut other = new.clone();
    other.chains[0].rules[0].verdict = Verdict::Accept;
    assert!(encode::update(&mut Writer::new(1, 0), &old, &other).is_none());
}

#[test]
fn malformed_answers_are_errors_with_their_offset() {
    let mut w = Writer::new(1, 0);
    let m = w.begin(Kind::GetGen, 0, 0, Label::Request);
    w.u32(1, 5);
    w.end(m);
    let good = w.bytes().to_vec();
    assert_eq!(wire::replies(&good).unwrap().len(), 1);
    let err = wire::replies(&good[..good.len() - 2]).unwrap_err();
    assert_eq!(err.offset, 0);
    let mut two = good.clone();
    two.extend_from_slice(&[8, 0, 0, 0]);
    assert_eq!(wire::replies(&two).unwrap_err().offset, good.len());
    let mut short = good.clone();
    short[..4].copy_from_slice(&4u32.to_ne_bytes());
    assert!(wire::replies(&short).is_err());
    // Attributes that run past their data simply end the list.
    let cut = Attributes::nested(&[200, 0, 1, 0, 1, 2]);
    assert_eq!(cut.count(), 0);
    assert_eq!(wire::udata_comment(&[7, 200, b'x'], 7), None);
}
