//! The agent's table as nf_tables netlink messages: the same expressions
//! `nft` generates for the script ([`Table::script`]), so both list alike.

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::wire::{
    F_ACK, F_APPEND, F_CREATE, Kind, Label, MAX_ATTRIBUTE, Writer, udata_put, udata_put_comment,
};
use crate::flows::NFLOG_GROUP;
use crate::ruleset::TABLE;
use crate::ruleset::model::{Chain, Hook, Key, Match, Rule, Set, Side, Table, Verdict};

/// `NFPROTO_INET`: tables of both IPv4 and IPv6.
pub const FAMILY_INET: u8 = 1;

// Attribute numbers from <linux/netfilter/nf_tables.h>.
const TABLE_NAME: u16 = 1;
const TABLE_FLAGS: u16 = 2;
const TABLE_USERDATA: u16 = 6;
const CHAIN_TABLE: u16 = 1;
const CHAIN_NAME: u16 = 3;
const CHAIN_HOOK: u16 = 4;
const CHAIN_POLICY: u16 = 5;
const CHAIN_TYPE: u16 = 7;
const HOOK_HOOKNUM: u16 = 1;
const HOOK_PRIORITY: u16 = 2;
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_EXPRESSIONS: u16 = 4;
const RULE_USERDATA: u16 = 7;
const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const SET_TABLE: u16 = 1;
const SET_NAME: u16 = 2;
const SET_FLAGS: u16 = 3;
const SET_KEY_TYPE: u16 = 4;
const SET_KEY_LEN: u16 = 5;
const SET_DATA_TYPE: u16 = 6;
const SET_DATA_LEN: u16 = 7;
const SET_ID: u16 = 10;
const SET_USERDATA: u16 = 13;
const SET_ELEM_LIST_TABLE: u16 = 1;
const SET_ELEM_LIST_SET: u16 = 2;
const SET_ELEM_LIST_ELEMENTS: u16 = 3;
const SET_ELEM_KEY: u16 = 1;
const SET_ELEM_DATA: u16 = 2;
const SET_ELEM_FLAGS: u16 = 3;
const DATA_VALUE: u16 = 1;
const DATA_VERDICT: u16 = 2;
const VERDICT_CODE: u16 = 1;
const VERDICT_CHAIN: u16 = 2;

const SET_INTERVAL: u32 = 0x4;
const SET_MAP: u32 = 0x8;
const SET_ELEM_INTERVAL_END: u32 = 0x1;
/// `NFT_DATA_VERDICT`: a map's values are verdicts.
const DATA_TYPE_VERDICT: u32 = 0xffff_ff00;

const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
/// `NFT_JUMP` (-3).
const NFT_JUMP: u32 = 0xffff_fffd;
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;

/// The value of one bound of an interval, as the kernel stores it: a
/// range is a start element and an end element just past its last key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bound {
    /// The key.
    pub value: u128,
    /// The end of a range (the first key after it).
    pub end: bool,
    /// For map starts: the chain jumped to.
    pub jump: Option<String>,
}

/// A set's elements as the bounds the kernel holds (for sets of single
/// keys, the keys).
#[must_use]
pub fn bounds(set: &Set) -> Vec<Bound> {
    if !set.interval {
        return set
            .elements
            .iter()
            .map(|e| Bound {
                value: e.first,
                end: false,
                jump: e.jump.clone(),
            })
            .collect();
    }
    let mut out = Vec::with_capacity(set.elements.len() * 2);
    for e in &set.elements {
        out.push(Bound {
            value: e.first,
            end: false,
            jump: e.jump.clone(),
        });
        // A range reaching the last key has no end: it runs to the end.
        if e.last < set.key.max() {
            out.push(Bound {
                value: e.last + 1,
                end: true,
                jump: None,
            });
        }
    }
    out
}

fn table_message(w: &mut Writer, comment: Option<&str>) {
    let m = w.begin(Kind::NewTable, F_CREATE | F_ACK, FAMILY_INET, Label::Table);
    w.string(TABLE_NAME, TABLE);
    w.u32(TABLE_FLAGS, 0);
    if let Some(c) = comment {
        let mut udata = Vec::new();
        udata_put_comment(&mut udata, 0, c);
        w.put(TABLE_USERDATA, &udata);
    }
    w.end(m);
}

/// Messages deleting the table.
pub fn delete_table(w: &mut Writer) {
    let m = w.begin(Kind::DelTable, F_ACK, FAMILY_INET, Label::Table);
    w.string(TABLE_NAME, TABLE);
    w.end(m);
}

/// Messages replacing the table with `table`: create it (so the delete
/// cannot fail), delete it, and build it again, all in one batch.
pub fn replace(w: &mut Writer, table: &Table) {
    // Room for it all at once: growing a buffer of megabytes step by step
    // costs more in fresh pages than the encoding itself.
    let ranges: usize = table.sets.iter().map(|s| s.elements.len()).sum();
    let rules: usize = table.chains.iter().map(|c| c.rules.len()).sum();
    w.reserve(ranges * 96 + rules * 512 + table.sets.len() * 256 + 4096);
    table_message(w, None);
    delete_table(w);
    table_message(w, Some(&table.comment));
    for (c, chain) in table.chains.iter().enumerate() {
        chain_message(w, chain, c);
    }
    for (id, (s, set)) in (1u32..).zip(table.sets.iter().enumerate()) {
        set_message(w, set, s, id);
    }
    for (s, set) in table.sets.iter().enumerate() {
        elements(w, Kind::NewSetElem, set, s, &bounds(set));
    }
    for (c, chain) in table.chains.iter().enumerate() {
        for (i, rule) in chain.rules.iter().enumerate() {
            rule_message(w, chain, Label::Rule { chain: c, index: i }, rule);
        }
    }
}

/// Messages turning the loaded `old` into `new` by adding and removing set
/// elements, when only elements differ; `None` when anything else does.
/// Returns the number of bounds added and removed.
pub fn update(w: &mut Writer, old: &Table, new: &Table) -> Option<(usize, usize)> {
    let same_sets = old.sets.len() == new.sets.len()
        && old.sets.iter().zip(&new.sets).all(|(a, b)| {
            a.name == b.name
                && a.key == b.key
                && a.map == b.map
                && a.interval == b.interval
                && a.comment == b.comment
        });
    if old.comment != new.comment || old.chains != new.chains || !same_sets {
        return None;
    }
    let (mut added, mut removed) = (0, 0);
    for (s, (a, b)) in old.sets.iter().zip(&new.sets).enumerate() {
        if a.elements == b.elements {
            continue;
        }
        let before: BTreeSet<Bound> = bounds(a).into_iter().collect();
        let after: BTreeSet<Bound> = bounds(b).into_iter().collect();
        let gone: Vec<Bound> = before.difference(&after).cloned().collect();
        let come: Vec<Bound> = after.difference(&before).cloned().collect();
        // Removals first: in one transaction, an added bound may take the
        // key of a removed one.
        elements(w, Kind::DelSetElem, b, s, &gone);
        elements(w, Kind::NewSetElem, b, s, &come);
        removed += gone.len();
        added += come.len();
    }
    Some((added, removed))
}

fn chain_message(w: &mut Writer, chain: &Chain, index: usize) {
    let m = w.begin(
        Kind::NewChain,
        F_CREATE | F_ACK,
        FAMILY_INET,
        Label::Chain(index),
    );
    w.string(CHAIN_TABLE, TABLE);
    w.string(CHAIN_NAME, &chain.name);
    if let Some(hook) = chain.hook {
        let h = w.nest(CHAIN_HOOK);
        // NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT; priority `filter` is 0.
        w.u32(
            HOOK_HOOKNUM,
            match hook {
                Hook::Input => 1,
                Hook::Output => 3,
            },
        );
        w.u32(HOOK_PRIORITY, 0);
        w.unnest(h);
        w.u32(CHAIN_POLICY, NF_ACCEPT);
        w.string(CHAIN_TYPE, "filter");
    }
    w.end(m);
}

fn set_message(w: &mut Writer, set: &Set, index: usize, id: u32) {
    let m = w.begin(
        Kind::NewSet,
        F_CREATE | F_ACK,
        FAMILY_INET,
        Label::Set(index),
    );
    w.string(SET_TABLE, TABLE);
    w.string(SET_NAME, &set.name);
    w.u32(
        SET_FLAGS,
        if set.interval { SET_INTERVAL } else { 0 } | if set.map { SET_MAP } else { 0 },
    );
    // nft's type numbers: ipv4_addr 7, ipv6_addr 8, inet_service 13.
    w.u32(
        SET_KEY_TYPE,
        match set.key {
            Key::Ipv4 => 7,
            Key::Ipv6 => 8,
            Key::Port => 13,
        },
    );
    w.u32(SET_KEY_LEN, u32::try_from(set.key.width()).unwrap_or(16));
    if set.map {
        w.u32(SET_DATA_TYPE, DATA_TYPE_VERDICT);
        w.u32(SET_DATA_LEN, 0);
    }
    w.u32(SET_ID, id);
    // User data as nft writes it: the key is big-endian (2); for maps the
    // data byte order and interval flag; the comment.
    let mut udata = Vec::new();
    udata_put(&mut udata, 0, &2u32.to_ne_bytes());
    if set.map {
        udata_put(&mut udata, 1, &0u32.to_ne_bytes());
        udata_put(&mut udata, 6, &0u32.to_ne_bytes());
    }
    if let Some(c) = &set.comment {
        udata_put_comment(&mut udata, 7, c);
    }
    w.put(SET_USERDATA, &udata);
    w.end(m);
}

/// Room left for elements in one message: the element list is one
/// attribute, whose length has 16 bits.
const ELEMENTS_PER_NEST: usize = MAX_ATTRIBUTE - 512;

fn elements(w: &mut Writer, kind: Kind, set: &Set, index: usize, list: &[Bound]) {
    let mut rest = list;
    let mut first = 0;
    while !rest.is_empty() {
        let m = w.begin(
            kind,
            if kind == Kind::NewSetElem {
                F_CREATE | F_ACK
            } else {
                F_ACK
            },
            FAMILY_INET,
            Label::Elements {
                set: index,
                first,
                count: 0,
            },
        );
        w.string(SET_ELEM_LIST_TABLE, TABLE);
        w.string(SET_ELEM_LIST_SET, &set.name);
        let list = w.nest(SET_ELEM_LIST_ELEMENTS);
        let mut taken = 0;
        for (n, b) in (1u16..).zip(rest) {
            if w.since(list) > ELEMENTS_PER_NEST {
                break;
            }
            let e = w.nest(n);
            if b.end {
                w.u32(SET_ELEM_FLAGS, SET_ELEM_INTERVAL_END);
            }
            let k = w.nest(SET_ELEM_KEY);
            w.put(DATA_VALUE, &set.key.bytes(b.value));
            w.unnest(k);
            if let Some(chain) = &b.jump {
                let d = w.nest(SET_ELEM_DATA);
                let v = w.nest(DATA_VERDICT);
                w.u32(VERDICT_CODE, NFT_JUMP);
                w.string(VERDICT_CHAIN, chain);
                w.unnest(v);
                w.unnest(d);
            }
            w.unnest(e);
            taken += 1;
        }
        w.unnest(list);
        w.end(m);
        if let Some((_, Label::Elements { count, .. })) = w.labels.last_mut() {
            *count = taken;
        }
        rest = rest.get(taken..).unwrap_or_default();
        first += taken;
    }
}

fn expression(w: &mut Writer, name: &str, body: impl FnOnce(&mut Writer)) {
    let e = w.nest(LIST_ELEM);
    w.string(EXPR_NAME, name);
    let d = w.nest(EXPR_DATA);
    body(w);
    w.unnest(d);
    w.unnest(e);
}

fn value(w: &mut Writer, ty: u16, bytes: &[u8]) {
    let n = w.nest(ty);
    w.put(DATA_VALUE, bytes);
    w.unnest(n);
}

/// `cmp` operators.
const CMP_EQ: u32 = 0;
const CMP_NEQ: u32 = 1;

fn cmp(w: &mut Writer, op: u32, data: &[u8]) {
    expression(w, "cmp", |w| {
        w.u32(1, REG_1);
        w.u32(2, op);
        value(w, 3, data);
    });
}

/// `meta` keys.
const META_IIF: u32 = 4;
const META_OIF: u32 = 5;
const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;

fn meta(w: &mut Writer, key: u32) {
    expression(w, "meta", |w| {
        w.u32(2, key);
        w.u32(1, REG_1);
    });
}

/// `payload` bases.
const NETWORK_HEADER: u32 = 1;
const TRANSPORT_HEADER: u32 = 2;

fn payload(w: &mut Writer, base: u32, offset: u32, len: u32) {
    expression(w, "payload", |w| {
        w.u32(1, REG_1);
        w.u32(2, base);
        w.u32(3, offset);
        w.u32(4, len);
    });
}

fn lookup(w: &mut Writer, set: &str, verdict: bool, negate: bool) {
    expression(w, "lookup", |w| {
        w.u32(2, REG_1);
        w.string(1, set);
        if verdict {
            w.u32(3, REG_VERDICT);
        }
        if negate {
            // NFT_LOOKUP_F_INV
            w.u32(5, 1);
        }
    });
}

fn bitwise(w: &mut Writer, mask: &[u8]) {
    expression(w, "bitwise", |w| {
        w.u32(1, REG_1);
        w.u32(2, REG_1);
        w.u32(3, u32::try_from(mask.len()).unwrap_or(16));
        value(w, 4, mask);
        value(w, 5, &vec![0; mask.len()]);
    });
}

/// The network header offset of an address: IPv4 source 12, destination
/// 16; IPv6 source 8, destination 24.
fn address_offset(v6: bool, side: Side) -> u32 {
    match (v6, side) {
        (false, Side::Source) => 12,
        (false, Side::Destination) => 16,
        (true, Side::Source) => 8,
        (true, Side::Destination) => 24,
    }
}

fn family_check(w: &mut Writer, v6: bool) {
    meta(w, META_NFPROTO);
    // NFPROTO_IPV4 2, NFPROTO_IPV6 10.
    cmp(w, CMP_EQ, &[if v6 { 10 } else { 2 }]);
}

fn condition(w: &mut Writer, m: &Match) {
    match m {
        Match::Established => {
            expression(w, "ct", |w| {
                // NFT_CT_STATE
                w.u32(2, 0);
                w.u32(1, REG_1);
            });
            // IP_CT_ESTABLISHED and IP_CT_RELATED bits, in host order.
            bitwise(w, &6u32.to_ne_bytes());
            cmp(w, CMP_NEQ, &0u32.to_ne_bytes());
        }
        Match::Loopback(hook) => {
            meta(
                w,
                match hook {
                    Hook::Input => META_IIF,
                    Hook::Output => META_OIF,
                },
            );
            // The loopback interface is index 1 in every namespace.
            cmp(w, CMP_EQ, &1u32.to_ne_bytes());
        }
        Match::Protocol(p) => {
            meta(w, META_L4PROTO);
            cmp(w, CMP_EQ, &[*p]);
        }
        Match::AddressIn {
            v6,
            side,
            set,
            negate,
        } => {
            family_check(w, *v6);
            payload(
                w,
                NETWORK_HEADER,
                address_offset(*v6, *side),
                if *v6 { 16 } else { 4 },
            );
            lookup(w, set, false, *negate);
        }
        Match::AddressPrefix { side, net } => {
            let v6 = matches!(net, IpNet::V6(_));
            family_check(w, v6);
            let (network, len): (Vec<u8>, u32) = match net {
                IpNet::V4(n) => (n.network().octets().to_vec(), 4),
                IpNet::V6(n) => (n.network().octets().to_vec(), 16),
            };
            let bits = u32::from(net.prefix_len());
            let offset = address_offset(v6, *side);
            if bits % 8 == 0 {
                // Whole bytes: nft loads just those.
                let bytes = bits / 8;
                payload(w, NETWORK_HEADER, offset, bytes);
                cmp(w, CMP_EQ, network.get(..bytes as usize).unwrap_or_default());
            } else {
                let mask: Vec<u8> = match net {
                    IpNet::V4(n) => n.netmask().octets().to_vec(),
                    IpNet::V6(n) => n.netmask().octets().to_vec(),
                };
                payload(w, NETWORK_HEADER, offset, len);
                bitwise(w, &mask);
                cmp(w, CMP_EQ, &network);
            }
        }
        Match::PortIn(set) => {
            payload(w, TRANSPORT_HEADER, 2, 2);
            lookup(w, set, false, false);
        }
        Match::LinkLocalIcmpv6 {
            icmp_type,
            hop_limit,
        } => {
            family_check(w, true);
            meta(w, META_L4PROTO);
            cmp(w, CMP_EQ, &[58]);
            payload(w, TRANSPORT_HEADER, 0, 1);
            cmp(w, CMP_EQ, &[*icmp_type]);
            // The hop limit is byte 7 of the IPv6 header.
            payload(w, NETWORK_HEADER, 7, 1);
            cmp(w, CMP_EQ, &[*hop_limit]);
        }
    }
}

fn verdict(w: &mut Writer, code: u32) {
    expression(w, "immediate", |w| {
        w.u32(1, REG_VERDICT);
        let d = w.nest(2);
        let v = w.nest(DATA_VERDICT);
        w.u32(VERDICT_CODE, code);
        w.unnest(v);
        w.unnest(d);
    });
}

fn rule_message(w: &mut Writer, chain: &Chain, label: Label, rule: &Rule) {
    let m = w.begin(
        Kind::NewRule,
        F_CREATE | F_APPEND | F_ACK,
        FAMILY_INET,
        label,
    );
    w.string(RULE_TABLE, TABLE);
    w.string(RULE_CHAIN, &chain.name);
    let list = w.nest(RULE_EXPRESSIONS);
    for m in &rule.matches {
        condition(w, m);
    }
    if rule.counter {
        expression(w, "counter", |_| {});
    }
    if let Some(prefix) = &rule.log {
        expression(w, "log", |w| {
            w.u16(1, NFLOG_GROUP);
            w.string(2, &crate::ruleset::model::quoted(prefix, 127));
        });
    }
    match &rule.verdict {
        Verdict::Accept => verdict(w, NF_ACCEPT),
        Verdict::Drop => verdict(w, NF_DROP),
        Verdict::PortMap(map) => {
            payload(w, TRANSPORT_HEADER, 2, 2);
            lookup(w, map, true, false);
        }
    }
    w.unnest(list);
    if let Some(c) = &rule.comment {
        let mut udata = Vec::new();
        udata_put_comment(&mut udata, 0, &crate::ruleset::model::quoted(c, 120));
        w.put(RULE_USERDATA, &udata);
    }
    w.end(m);
}
