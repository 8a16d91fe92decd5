//! `cordon policy diff`: which (group → group, port) reachabilities appear
//! or disappear between two versions of a policy.
//!
//! The diff is symbolic, over the policies' own rules: each allow rule yields
//! atoms (from group, to group, ports); an atom is reachable unless enforced
//! deny rules cover it completely. An atom of the new policy "appears" when
//! no reachable atom of the old policy already covered it, and the other way
//! round for "disappears". Group containment follows each policy's nesting;
//! what a group selects is compared by definition, and changed definitions are
//! listed on their own, since they change reachability without any rule
//! changing.

use serde::Serialize;

use crate::model::{Action, Containment, GroupId, Mode, Policy};
use crate::ports::PortRange;

/// One reachability: traffic from a group to a group on some ports.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Reachability {
    /// Source group.
    pub from: String,
    /// Destination group.
    pub to: String,
    /// Ports, as written in rules (`tcp/443`).
    pub port: String,
    /// The allow rule it comes from.
    pub rule: String,
}

/// What changed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PolicyDiff {
    /// Reachable now, not before.
    pub appears: Vec<Reachability>,
    /// Reachable before, not now.
    pub disappears: Vec<Reachability>,
    /// Groups whose definition changed (same name).
    pub changed_groups: Vec<String>,
    /// Groups only in the new policy.
    pub added_groups: Vec<String>,
    /// Groups only in the old policy.
    pub removed_groups: Vec<String>,
    /// Policy-level changes (`default`, `mode`).
    pub settings: Vec<String>,
}

impl PolicyDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.appears.is_empty()
            && self.disappears.is_empty()
            && self.changed_groups.is_empty()
            && self.added_groups.is_empty()
            && self.removed_groups.is_empty()
            && self.settings.is_empty()
    }
}

struct Atom {
    from: GroupId,
    to: GroupId,
    port: PortRange,
    rule: String,
}

/// Reachable atoms of `policy`.
fn atoms(policy: &Policy, containment: &Containment) -> Vec<Atom> {
    let denies: Vec<_> = policy
        .rules
        .iter()
        .filter(|r| r.action == Action::Deny && policy.rule_mode(r) == Mode::Enforce)
        .collect();
    let mut out = Vec::new();
    for rule in policy.rules.iter().filter(|r| r.action == Action::Allow) {
        for from in &rule.from {
            for to in &rule.to {
                for port in rule.port_list() {
                    let denied = denies
                        .iter()
                        .any(|d| containment.rule_covers(d, *from, *to, &port));
                    if !denied {
                        out.push(Atom {
                            from: *from,
                            to: *to,
                            port,
                            rule: rule.name.clone(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// Atoms of `a` that no atom of `b` covers, judged in `b`'s containment
/// (groups matched by name).
fn uncovered(
    a: &Policy,
    a_atoms: &[Atom],
    b: &Policy,
    b_atoms: &[Atom],
    b_containment: &Containment,
) -> Vec<Reachability> {
    let mut out: Vec<Reachability> = a_atoms
        .iter()
        .filter(|atom| {
            let from = b.group_id(a.group_name(atom.from));
            let to = b.group_id(a.group_name(atom.to));
            let (Some(from), Some(to)) = (from, to) else {
                return true;
            };
            !b_atoms.iter().any(|other| {
                b_containment.covers(other.from, from)
                    && b_containment.covers(other.to, to)
                    && atom.port.is_within(&other.port)
            })
        })
        .map(|atom| Reachability {
            from: a.group_name(atom.from).to_string(),
            to: a.group_name(atom.to).to_string(),
            port: atom.port.to_string(),
            rule: atom.rule.clone(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Compare `old` and `new`.
pub fn diff(old: &Policy, new: &Policy) -> PolicyDiff {
    let old_c = Containment::new(old);
    let new_c = Containment::new(new);
    let old_atoms = atoms(old, &old_c);
    let new_atoms = atoms(new, &new_c);
    let mut d = PolicyDiff {
        appears: uncovered(new, &new_atoms, old, &old_atoms, &old_c),
        disappears: uncovered(old, &old_atoms, new, &new_atoms, &new_c),
        ..PolicyDiff::default()
    };
    for g in new.groups.iter().filter(|g| !g.builtin) {
        match old.group_id(&g.name).and_then(|id| old.group(id)) {
            None => d.added_groups.push(g.name.clone()),
            Some(o) => {
                let names = |p: &Policy, ids: &[GroupId]| -> Vec<String> {
                    let mut v: Vec<String> =
                        ids.iter().map(|i| p.group_name(*i).to_string()).collect();
                    v.sort();
                    v
                };
                let same = o.labels == g.labels
                    && sorted(&o.cidrs) == sorted(&g.cidrs)
                    && sorted(&o.fqdns) == sorted(&g.fqdns)
                    && sorted(&o.spiffe) == sorted(&g.spiffe)
                    && names(old, &o.members) == names(new, &g.members)
                    && o.external == g.external;
                if !same {
                    d.changed_groups.push(g.name.clone());
                }
            }
        }
    }
    for g in old.groups.iter().filter(|g| !g.builtin) {
        if new.group_id(&g.name).is_none() {
            d.removed_groups.push(g.name.clone());
        }
    }
    if old.default != new.default {
        d.settings
            .push(format!("default: {} → {}", old.default, new.default));
    }
    if old.mode != new.mode {
        d.settings
            .push(format!("mode: {} → {}", old.mode, new.mode));
    }
    d
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}
