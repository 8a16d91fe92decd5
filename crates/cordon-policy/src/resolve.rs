//! Second phase: names resolved to ids, inventory merged, cycles refused.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cordon_yaml::{Diagnostic, Diagnostics, Pos, closest};

use crate::model::{Action, Group, GroupId, Mode, Policy, Rule, Workload};
use crate::raw::{RawPolicy, RawWorkload, Spanned};

/// A workload and the file it was read from.
pub struct SourcedWorkload {
    /// The file, as named by the user.
    pub file: Arc<str>,
    /// The workload as written.
    pub workload: RawWorkload,
}

const BUILTINS: [(&str, &str); 3] = [
    ("any", "every endpoint"),
    (
        "internet",
        "public addresses: everything outside private, loopback, link-local, CGNAT, multicast, documentation and reserved ranges; and hostnames",
    ),
    (
        "private",
        "RFC 1918, CGNAT (100.64.0.0/10) and ULA (fc00::/7) addresses",
    ),
];

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.len() <= 128
}

fn check_name(diags: &mut Diagnostics, what: &str, name: &Spanned<String>) {
    if !valid_name(&name.value) {
        diags.error_hint(
            name.pos,
            format!("invalid {what} name `{}`", name.value),
            "names start with a letter or digit and hold letters, digits, `-`, `_` and `.` (at most 128)",
        );
    }
}

/// Resolve a decoded policy and the workloads from inventory files into a
/// [`Policy`]. Problems in the policy go to `diags`; problems located in
/// inventory files are pushed there too, with their own file names.
pub fn resolve(
    raw: &RawPolicy,
    inventory: Vec<SourcedWorkload>,
    diags: &mut Diagnostics,
) -> Policy {
    let file = Arc::clone(diags.file());
    let mut groups: Vec<Group> = BUILTINS
        .iter()
        .map(|(name, description)| Group {
            name: (*name).to_string(),
            description: Some((*description).to_string()),
            builtin: true,
            labels: None,
            cidrs: Vec::new(),
            fqdns: Vec::new(),
            spiffe: Vec::new(),
            identities: Vec::new(),
            data: Vec::new(),
            members: Vec::new(),
            external: false,
            vendor: None,
            pos: None,
        })
        .collect();
    let mut ids: HashMap<&str, GroupId> = BUILTINS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (*name, GroupId(i as u32)))
        .collect();

    for g in &raw.groups {
        check_name(diags, "group", &g.name);
        if ids.contains_key(g.name.value.as_str()) {
            diags.error_hint(
                g.name.pos,
                format!("group name `{}` is reserved", g.name.value),
                "`any`, `internet` and `private` are built in; choose another name",
            );
            continue;
        }
        let id = GroupId(u32::try_from(groups.len()).unwrap_or(u32::MAX));
        ids.insert(&g.name.value, id);
        if g.vendor.is_some() && !g.external {
            diags.error_hint(
                g.name.pos,
                format!(
                    "group `{}` has vendor metadata but is not external",
                    g.name.value
                ),
                "add `external: true`",
            );
        }
        groups.push(Group {
            name: g.name.value.clone(),
            description: g.description.clone(),
            builtin: false,
            labels: g
                .labels
                .as_ref()
                .map(|l| l.value.iter().cloned().collect::<BTreeMap<_, _>>()),
            cidrs: g.cidrs.iter().map(|c| c.value).collect(),
            fqdns: g.fqdns.iter().map(|f| f.value.clone()).collect(),
            spiffe: g.spiffe.iter().map(|s| s.value.clone()).collect(),
            identities: g.identities.iter().map(|s| s.value.clone()).collect(),
            data: g.data.clone(),
            members: Vec::new(),
            external: g.external,
            vendor: g.vendor.clone(),
            pos: Some(g.name.pos),
        });
    }

    let workloads = resolve_workloads(raw, inventory, diags);
    let workload_names: HashMap<&str, ()> =
        workloads.iter().map(|w| (w.name.as_str(), ())).collect();
    let group_names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let lookup = |diags: &mut Diagnostics, name: &Spanned<String>| -> Option<GroupId> {
        if let Some(id) = ids.get(name.value.as_str()) {
            return Some(*id);
        }
        let hint = if workload_names.contains_key(name.value.as_str()) {
            format!(
                "`{}` is a workload; rules and groups name groups: define a group that selects it",
                name.value
            )
        } else if let Some(best) = closest(&name.value, group_names.iter().map(String::as_str)) {
            format!("did you mean `{best}`?")
        } else {
            "define it under spec.groups, or use `any`, `internet` or `private`".to_string()
        };
        diags.error_hint(name.pos, format!("unknown group `{}`", name.value), hint);
        None
    };

    let user_groups = raw
        .groups
        .iter()
        .filter(|g| !BUILTINS.iter().any(|(b, _)| *b == g.name.value));
    for (offset, g) in user_groups.enumerate() {
        let members: Vec<GroupId> = g.groups.iter().filter_map(|n| lookup(diags, n)).collect();
        if let Some(group) = groups.get_mut(GroupId::BUILTIN_COUNT as usize + offset) {
            group.members = members;
        }
    }
    report_cycles(&groups, diags);

    let mut rules = Vec::new();
    let mut rule_lines: HashMap<&str, u32> = HashMap::new();
    for r in &raw.rules {
        check_name(diags, "rule", &r.name);
        if let Some(line) = rule_lines.insert(&r.name.value, r.name.pos.line) {
            diags.error_hint(
                r.name.pos,
                format!(
                    "duplicate rule name `{}` (first at line {line})",
                    r.name.value
                ),
                "rule names must be unique; they name the rule in decisions and logs",
            );
        }
        if r.from.is_empty() {
            diags.error_hint(
                r.name.pos,
                format!("rule `{}` has an empty `from`", r.name.value),
                "name at least one group, or `any`",
            );
        }
        if r.to.is_empty() {
            diags.error_hint(
                r.name.pos,
                format!("rule `{}` has an empty `to`", r.name.value),
                "name at least one group, or `any`",
            );
        }
        if r.limit.is_some() && r.action.value == Action::Deny {
            diags.error_hint(
                r.action.pos,
                format!("rule `{}` denies but has a `limit`", r.name.value),
                "limits meter allowed traffic; remove the limit or make the rule allow",
            );
        }
        let from = r.from.iter().filter_map(|n| lookup(diags, n)).collect();
        let to = r.to.iter().filter_map(|n| lookup(diags, n)).collect();
        rules.push(Rule {
            name: r.name.value.clone(),
            description: r.description.clone(),
            from,
            to,
            ports: r.ports.iter().map(|p| p.value).collect(),
            action: r.action.value,
            limit: r.limit,
            log: r.log,
            mode: r.mode.as_ref().map(|m| m.value),
            pos: Some(r.name.pos),
        });
    }

    Policy {
        name: raw.name.value.clone(),
        description: raw.description.clone(),
        mode: raw.mode.as_ref().map_or(Mode::Enforce, |m| m.value),
        default: raw.default.as_ref().map_or(Action::Deny, |d| d.value),
        workloads,
        groups,
        rules,
        file: file.to_string(),
        raw: raw.clone(),
    }
}

fn resolve_workloads(
    raw: &RawPolicy,
    inventory: Vec<SourcedWorkload>,
    diags: &mut Diagnostics,
) -> Vec<Workload> {
    let policy_file = Arc::clone(diags.file());
    let inline = raw
        .inventory
        .iter()
        .cloned()
        .map(|workload| SourcedWorkload {
            file: Arc::clone(&policy_file),
            workload,
        });
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for SourcedWorkload { file, workload } in inline.chain(inventory) {
        let origin = format!("{file}:{}", workload.name.pos);
        if !valid_name(&workload.name.value) && !workload.name.value.contains('/') {
            diags.push(
                Diagnostic::error(
                    &file,
                    Some(workload.name.pos),
                    format!("invalid workload name `{}`", workload.name.value),
                )
                .with_hint("names hold letters, digits, `-`, `_`, `.` and `/`"),
            );
        }
        if let Some(first) = seen.get(&workload.name.value) {
            diags.push(
                Diagnostic::error(
                    &file,
                    Some(workload.name.pos),
                    format!(
                        "duplicate workload `{}` (first at {first})",
                        workload.name.value
                    ),
                )
                .with_hint("workload names must be unique across the policy and its inventories"),
            );
            continue;
        }
        seen.insert(workload.name.value.clone(), origin.clone());
        out.push(Workload {
            name: workload.name.value,
            ips: workload.ips.into_iter().map(|i| i.value).collect(),
            labels: workload.labels.into_iter().collect(),
            spiffe: workload.spiffe.map(|s| s.value),
            origin,
        });
    }
    out
}

/// Report every cycle among nested groups once, as a path.
fn report_cycles(groups: &[Group], diags: &mut Diagnostics) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Active,
        Done,
    }
    let mut state = vec![State::New; groups.len()];
    for start in 0..groups.len() {
        if state.get(start) != Some(&State::New) {
            continue;
        }
        // Iterative depth-first search: (group, next member index).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        if let Some(s) = state.get_mut(start) {
            *s = State::Active;
        }
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let member = groups
                .get(node)
                .and_then(|g| g.members.get(*next))
                .map(|m| m.index());
            *next += 1;
            match member {
                None => {
                    if let Some(s) = state.get_mut(node) {
                        *s = State::Done;
                    }
                    stack.pop();
                }
                Some(m) => match state.get(m) {
                    Some(State::New) => {
                        if let Some(s) = state.get_mut(m) {
                            *s = State::Active;
                        }
                        stack.push((m, 0));
                    }
                    Some(State::Active) => {
                        let from = stack.iter().position(|(n, _)| *n == m).unwrap_or(0);
                        let mut path: Vec<&str> = stack
                            .iter()
                            .skip(from)
                            .filter_map(|(n, _)| groups.get(*n).map(|g| g.name.as_str()))
                            .collect();
                        path.push(groups.get(m).map_or("?", |g| g.name.as_str()));
                        let pos = groups.get(m).and_then(|g| g.pos).unwrap_or(Pos::default());
                        diags.error_hint(
                            pos,
                            format!("group cycle: {}", path.join(" → ")),
                            "a group may not contain itself, directly or through other groups",
                        );
                    }
                    _ => {}
                },
            }
        }
    }
}
