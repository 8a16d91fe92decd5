//! Creating, approving, undoing and expiring responses in a document. Each
//! step checks what it must (the TTL bound, the never-block list, that the
//! targets exist) and appends to the response's audit trail.

use std::sync::Arc;

use cordon_core::units::Window;
use cordon_policy::{CompiledPolicy, LoadOptions};
use ipnet::IpNet;

use crate::document::Responses;
use crate::model::{Action, Event, Peer, Response, ResponseId, Status};
use crate::overlay::{Overlay, Refused};

/// What a new response is to be.
#[derive(Clone, Debug)]
pub struct NewResponse {
    /// What it does.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// The finding it answers.
    pub finding: Option<String>,
    /// The incident it answers.
    pub incident: Option<String>,
    /// Who or what asks for it (`cli:alice`, `playbook:NAME`).
    pub by: String,
    /// How long it holds once active.
    pub ttl: Window,
    /// Make it `proposed` (waiting for approval) rather than `active`.
    pub propose: bool,
}

/// Why a change to the responses file did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The change was refused (never-block list, TTL, unknown name or id).
    #[error("refused: {0}")]
    Refused(#[from] Refused),
    /// The file could not be read or written.
    #[error(transparent)]
    File(#[from] crate::file::FileError),
}

/// A policy with nothing in it, for checking responses when no policy is
/// given: addresses and hostnames resolve, names do not.
///
/// # Errors
/// None in practice: the policy is fixed text.
pub fn empty_policy() -> Result<Arc<CompiledPolicy>, cordon_policy::PolicyError> {
    let text =
        "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: none}\nspec:\n  default: allow\n";
    let policy = cordon_policy::parse_policy("(no policy)", text, &LoadOptions::default())?;
    Ok(Arc::new(CompiledPolicy::new(Arc::new(policy))))
}

/// Mark the active responses whose time ran out as `expired` (with an
/// audit entry). Returns how many.
pub fn expire_due(doc: &mut Responses, now_ms: i64) -> usize {
    let mut n = 0;
    for r in &mut doc.responses {
        if r.status == Status::Active && r.status_at(now_ms) == Status::Expired {
            r.status = Status::Expired;
            r.history.push(Event {
                at: r.expires.unwrap_or(now_ms),
                by: "ttl".into(),
                what: "expired".into(),
                note: None,
            });
            n += 1;
        }
    }
    n
}

/// Check `new` and add it to `doc`; its id.
///
/// # Errors
/// A TTL above the document's maximum, a target that does not resolve
/// against `policy`, or one on the never-block list (`doc`'s and
/// `extra_never`).
pub fn add(
    doc: &mut Responses,
    new: NewResponse,
    policy: &CompiledPolicy,
    now_ms: i64,
    extra_never: &[(IpNet, String)],
) -> Result<ResponseId, Refused> {
    if new.ttl.0.is_zero() {
        return Err(Refused("the TTL must be longer than zero".into()));
    }
    if new.ttl > doc.max_ttl {
        return Err(Refused(format!(
            "a TTL of {} is longer than the {} this responses file allows (spec.maxTtl)",
            new.ttl, doc.max_ttl
        )));
    }
    if new.reason.trim().is_empty() {
        return Err(Refused("a response needs a reason".into()));
    }
    if let Action::Quarantine { allow, .. } = &new.action
        && let Some(why) = allow.iter().find_map(|p| Peer::invalid(&p.to_string()))
    {
        return Err(Refused(format!("allow-list: {why}")));
    }
    expire_due(doc, now_ms);
    let mut id = ResponseId::new(
        now_ms,
        &format!("{}/{}", doc.generation, doc.responses.len()),
    );
    let mut salt = 0u32;
    while doc.get(&id.0).is_some() {
        salt += 1;
        id = ResponseId::new(
            now_ms,
            &format!("{}/{}/{salt}", doc.generation, doc.responses.len()),
        );
    }
    let ttl_ms = i64::try_from(new.ttl.0.as_millis()).unwrap_or(i64::MAX);
    let status = if new.propose {
        Status::Proposed
    } else {
        Status::Active
    };
    let response = Response {
        id: id.clone(),
        action: new.action,
        reason: new.reason,
        finding: new.finding,
        incident: new.incident,
        created_by: new.by.clone(),
        created: now_ms,
        ttl: new.ttl,
        expires: (!new.propose).then(|| now_ms.saturating_add(ttl_ms)),
        status,
        history: vec![Event {
            at: now_ms,
            by: new.by,
            what: if new.propose { "proposed" } else { "created" }.into(),
            note: None,
        }],
    };
    // The same checks every enforcement point makes.
    let overlay = Overlay::build(doc, policy, now_ms, extra_never);
    overlay.resolve(&response, policy)?;
    doc.responses.push(response);
    Ok(id)
}

/// The response `id`, or why there is none.
fn find<'a>(doc: &'a mut Responses, id: &str) -> Result<&'a mut Response, Refused> {
    let known: Vec<String> = doc.responses.iter().map(|r| r.id.0.clone()).collect();
    doc.responses
        .iter_mut()
        .find(|r| r.id.0 == id)
        .ok_or_else(|| {
            Refused(
                match cordon_yaml::closest(id, known.iter().map(String::as_str)) {
                    Some(best) => format!("no response `{id}` (did you mean `{best}`?)"),
                    None => format!("no response `{id}`"),
                },
            )
        })
}

/// Approve the proposed response `id` (with `note` for the trail): it
/// becomes active for its TTL from now, after the same checks as a new one.
///
/// # Errors
/// No such response, not proposed, or refused by the checks.
pub fn approve(
    doc: &mut Responses,
    id: &str,
    by: &str,
    note: Option<String>,
    policy: &CompiledPolicy,
    now_ms: i64,
    extra_never: &[(IpNet, String)],
) -> Result<(), Refused> {
    expire_due(doc, now_ms);
    let overlay = Overlay::build(doc, policy, now_ms, extra_never);
    let r = find(doc, id)?;
    if r.status != Status::Proposed {
        return Err(Refused(format!(
            "response {id} is {}; only a proposed response can be approved",
            r.status.as_str()
        )));
    }
    overlay.resolve(r, policy)?;
    let ttl_ms = i64::try_from(r.ttl.0.as_millis()).unwrap_or(i64::MAX);
    r.status = Status::Active;
    r.expires = Some(now_ms.saturating_add(ttl_ms));
    r.history.push(Event {
        at: now_ms,
        by: by.into(),
        what: "approved".into(),
        note,
    });
    Ok(())
}

/// Undo response `id` (active or proposed): it stops holding everywhere at
/// the next reload of each enforcement point.
///
/// # Errors
/// No such response, or it already ended.
pub fn undo(
    doc: &mut Responses,
    id: &str,
    by: &str,
    note: Option<String>,
    now_ms: i64,
) -> Result<(), Refused> {
    expire_due(doc, now_ms);
    let r = find(doc, id)?;
    if matches!(r.status, Status::Expired | Status::Undone) {
        return Err(Refused(format!(
            "response {id} is already {}",
            r.status.as_str()
        )));
    }
    r.status = Status::Undone;
    r.history.push(Event {
        at: now_ms,
        by: by.into(),
        what: "undone".into(),
        note,
    });
    Ok(())
}
