//! Incidents in the formats other tools read: OCSF Incident Finding
//! (class 2005, OCSF 1.3.0) and STIX 2.1 (an `incident` and a `report`
//! that groups it with the findings' objects, added to the findings'
//! bundle).

use cordon_detect::Finding;
use cordon_detect::kb::Kb;
use cordon_detect::ocsf::{OCSF_VERSION, attacks, finding_info, severity};
use cordon_detect::stix::{stix_id, ts};
use serde_json::{Value, json};

use crate::model::{Incident, Status};

/// The OCSF Incident Finding for `incident`, whose findings are `findings`.
///
/// Activity follows the status (Create while open, Update once someone
/// acknowledged it, Close when resolved); the assignee is whoever last
/// changed it, else the queue new incidents wait in.
pub fn incident_finding(incident: &Incident, findings: &[Finding], kb: &Kb) -> Value {
    let (activity_id, activity) = match incident.status {
        Status::Open if incident.history.is_empty() => (1, "Create"),
        Status::Open | Status::Acknowledged => (2, "Update"),
        Status::Resolved => (3, "Close"),
    };
    let (status_id, status) = match incident.status {
        Status::Open => (1, "New"),
        Status::Acknowledged => (2, "In Progress"),
        Status::Resolved => (4, "Resolved"),
    };
    let (severity_id, severity) = severity(incident.severity);
    let infos: Vec<Value> = findings.iter().map(|f| finding_info(f, kb)).collect();
    let mut event = json!({
        "class_uid": 2005,
        "class_name": "Incident Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": 200_500 + activity_id,
        "type_name": format!("Incident Finding: {activity}"),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "time": incident.last_ms,
        "start_time": incident.first_ms,
        "end_time": incident.last_ms,
        "desc": incident.title,
        "message": format!("{} ({})", incident.title, incident.severity_reason),
        "finding_info_list": infos,
        "attacks": attacks(&incident.techniques, kb),
        "impact_id": severity_id.saturating_sub(1),
        "impact": severity,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": incident.id,
            "product": {"name": "Cordon", "vendor_name": "Cordon", "version": env!("CARGO_PKG_VERSION")},
        },
        "unmapped": {
            "cordon": {
                "stages": incident.stage_ids(),
                "controls": incident.controls,
                "entities": incident.entities,
            }
        },
    });
    match incident.history.last() {
        Some(change) => {
            event["assignee"] = json!({"name": change.by});
            if !change.note.is_empty() {
                event["comment"] = json!(change.note);
            }
        }
        None => {
            event["assignee_group"] =
                json!({"name": "unassigned", "desc": "new incidents nobody has taken yet"})
        }
    }
    event
}

/// Add each incident to a findings bundle made by
/// [`cordon_detect::stix::bundle`]: an `incident` object, and a `report`
/// whose refs are the incident and every object its findings produced.
pub fn add_to_bundle(bundle: &mut Value, incidents: &[Incident], kb: &Kb, now_ms: i64) {
    let created = ts(now_ms);
    let identity = stix_id("identity", "cordon");
    let Some(objects) = bundle.get_mut("objects").and_then(Value::as_array_mut) else {
        return;
    };
    let mut added = Vec::new();
    for incident in incidents {
        let incident_id = stix_id("incident", &incident.id);
        let tactics: Vec<&str> = incident
            .tactics
            .iter()
            .filter_map(|t| kb.tactics.get(t))
            .map(|t| t.name.as_str())
            .collect();
        // STIX 2.1's incident is a stub (name and description); the
        // techniques are the report's attack-patterns.
        let stix_incident = json!({
            "type": "incident", "spec_version": "2.1", "id": incident_id,
            "created": created, "modified": created, "created_by_ref": identity,
            "name": format!("{}: {}", incident.id, incident.title),
            "description": format!(
                "{} Severity {} ({}); status {}. Stages: {}. ATT&CK tactics: {}.",
                incident.title,
                incident.severity.as_str(),
                incident.severity_reason,
                incident.status,
                incident.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
                tactics.join(", "),
            ),
            "external_references": [{"source_name": "cordon", "external_id": incident.id}],
        });
        // Everything the findings produced: their sightings, observed data,
        // indicators and the techniques.
        let mut refs = vec![json!(incident_id)];
        for f in &incident.findings {
            for kind in ["sighting", "observed-data"] {
                let id = stix_id(kind, f);
                if objects.iter().any(|o| o["id"] == id) {
                    refs.push(json!(id));
                }
            }
            let prefix = "indicator--";
            for o in objects.iter() {
                let is_indicator = o["id"].as_str().is_some_and(|i| i.starts_with(prefix));
                let of_finding = o["id"]
                    == json!(stix_id(
                        "indicator",
                        &format!("{f}|{}", o["pattern"].as_str().unwrap_or(""))
                    ));
                if is_indicator && of_finding && !refs.contains(&o["id"]) {
                    refs.push(o["id"].clone());
                }
            }
        }
        for t in &incident.techniques {
            let id = json!(stix_id("attack-pattern", t));
            if objects.iter().any(|o| o["id"] == id) && !refs.contains(&id) {
                refs.push(id);
            }
        }
        let report = json!({
            "type": "report", "spec_version": "2.1",
            "id": stix_id("report", &incident.id),
            "created": created, "modified": created, "created_by_ref": identity,
            "name": format!("Cordon incident {}: {}", incident.id, incident.title),
            "description": format!("The findings Cordon linked into incident {}.", incident.id),
            "report_types": ["threat-report"],
            "published": created,
            "object_refs": refs,
        });
        added.push(stix_incident);
        added.push(report);
    }
    objects.extend(added);
}
