//! The OpenAPI 3.1 document of `/api/v1` (the tests check every route
//! against it).

use serde_json::{Value, json};

fn param(name: &str, place: &str, desc: &str, required: bool) -> Value {
    json!({"name": name, "in": place, "required": required, "description": desc, "schema": {"type": "string"}})
}

fn range() -> Vec<Value> {
    vec![
        param(
            "since",
            "query",
            "Start: RFC 3339, epoch seconds, or a duration back from now (24h, 7d)",
            false,
        ),
        param("until", "query", "End, in the same forms", false),
    ]
}

fn op(summary: &str, role: &str, params: Vec<Value>, body: Option<Value>) -> Value {
    let mut o = json!({
        "summary": summary,
        "description": format!("Needs the {role} role."),
        "parameters": params,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
        },
    });
    if let Some(b) = body {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    o
}

/// The document.
pub fn document() -> Value {
    let create_body = json!({
        "type": "object", "required": ["action", "ttl", "reason"],
        "properties": {
            "action": {"type": "string", "enum": ["quarantine", "block", "throttle"]},
            "ip": {"type": "string"}, "workload": {"type": "string"},
            "allow": {"type": "array", "items": {"type": "string"}},
            "to": {"type": "string", "description": "FQDN, CIDR, group, or vendor:NAME"}, "from": {"type": "string"},
            "vendor": {"type": "string"}, "limit": {"type": "string", "examples": ["10MiB/h"]},
            "ttl": {"type": "string", "examples": ["1h"]}, "reason": {"type": "string"},
            "finding": {"type": "string"}, "incident": {"type": "string"}, "propose": {"type": "boolean"},
        },
    });
    let id = || param("id", "path", "Incident id (INC-...)", true);
    let mut flows = range();
    flows.extend([
        param(
            "q",
            "query",
            "Filter: group:G port:N proto:P verdict:V vendor:\"V\" src:CIDR dst:CIDR addr:CIDR",
            false,
        ),
        param(
            "limit",
            "query",
            "Page size, 1 to 5000 (default 100)",
            false,
        ),
        param("cursor", "query", "next_cursor of the previous page", false),
        param(
            "group_by",
            "query",
            "src_group, dst_group, port, verdict, vendor, src or dst",
            false,
        ),
        param(
            "bucket",
            "query",
            "Counts per time bucket: 1m, 5m, 1h, 1d",
            false,
        ),
    ]);
    let mut findings = range();
    findings.truncate(1);
    findings.extend([
        param(
            "min_severity",
            "query",
            "low, medium, high, critical",
            false,
        ),
        param("kind", "query", "Finding kind (beaconing, ...)", false),
        param("limit", "query", "At most this many (default 1000)", false),
    ]);
    let note =
        json!({"type": "object", "properties": {"note": {"type": "string", "maxLength": 10000}}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Cordon API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Flows, topology, findings, incidents, the vendor register and the policy of one Cordon store. Authenticate with `Authorization: Bearer TOKEN`; roles are viewer, responder and admin (a partner token is for TAXII under /taxii2/ only). Errors are JSON: {\"error\": {\"code\", \"message\"}}.",
            "license": {"name": "Apache-2.0 OR MIT", "identifier": "Apache-2.0 OR MIT"},
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "An error", "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}, "required": ["code", "message"]}},
            }}}}},
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness; the only route without authentication", "security": [], "responses": {"200": {"description": "OK"}}}},
            "/metrics": {"get": op("Prometheus metrics (text format)", "viewer", vec![], None)},
            "/api/v1/openapi.json": {"get": op("This document", "viewer", vec![], None)},
            "/api/v1/overview": {"get": op("Counts, open incidents, top talkers (last day of data) and verdicts per hour", "viewer", vec![], None)},
            "/api/v1/flows": {"get": op("Stored flows: a page (with next_cursor), groups (group_by) or time buckets (bucket)", "viewer", flows, None)},
            "/api/v1/topology": {"get": op("Group to group edges with flows, bytes and verdicts", "viewer", range(), None)},
            "/api/v1/findings": {"get": op("Findings, gravest first", "viewer", findings, None)},
            "/api/v1/incidents": {"get": op("Incidents", "viewer", vec![param("status", "query", "open, acknowledged or resolved", false)], None)},
            "/api/v1/incidents/{id}": {"get": op("One incident with its findings", "viewer", vec![id()], None)},
            "/api/v1/incidents/{id}/ack": {"post": op("Acknowledge an incident", "responder", vec![id()], Some(note.clone()))},
            "/api/v1/incidents/{id}/resolve": {"post": op("Resolve an incident", "responder", vec![id()], Some(note))},
            "/api/v1/incidents/{id}/report": {"get": op("The incident's report", "viewer", vec![id(), param("format", "query", "md, html (default) or json", false)], None)},
            "/api/v1/vendors": {"get": op("The register of third parties the flows show", "viewer", range(), None)},
            "/api/v1/policy": {"get": op("The policy in force: groups, rules and its text", "viewer", vec![], None)},
            "/api/v1/policy/bundle": {"get": {
                "summary": "The signed policy bundle agents and gateways pull (404 when none is published, 503 when the server's trusted keys refuse it and no good one was published before); send If-None-Match with the last ETag to get 304 when unchanged",
                "description": "Needs the viewer role.",
                "parameters": [],
                "responses": {
                    "200": {"description": "The bundle", "headers": {"ETag": {"schema": {"type": "string"}}}, "content": {"application/vnd.cordon.policy-bundle+gzip": {"schema": {"type": "string", "format": "binary"}}}},
                    "304": {"description": "Unchanged since the ETag sent"},
                    "401": {"$ref": "#/components/responses/Error"},
                    "403": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"},
                    "503": {"$ref": "#/components/responses/Error"},
                },
            }},
            "/api/v1/policy/explain": {"post": op("Why the policy decides a connection as it does", "viewer", vec![], Some(json!({
                "type": "object", "required": ["from", "to", "port"],
                "properties": {"from": {"type": "string"}, "to": {"type": "string"}, "port": {"type": "string", "examples": ["tcp/443"]}},
            })))},
            "/api/v1/policy/lint": {"get": op("Lint findings of the policy in force", "viewer", vec![], None)},
            "/api/v1/policy/what-if": {"post": op("Stored flows a candidate policy would newly deny or no longer deny, and the reachability diff", "viewer", vec![], Some(json!({
                "type": "object", "required": ["policy"],
                "properties": {"policy": {"type": "string", "description": "Policy YAML"}, "since": {"type": "string"}, "until": {"type": "string"}},
            })))},
            "/api/v1/responses": {
                "get": op("Responses in the responses file (quarantines, blocks, throttles) with status and audit trail", "viewer", vec![], None),
                "post": op("Make a response (409 when refused: never-block list, TTL above the maximum, unknown name; or when the server has no responses file)", "responder", vec![], Some(create_body)),
            },
            "/api/v1/responses/{id}/approve": {"post": op("Approve a proposed response: in force for its TTL from now", "responder", vec![param("id", "path", "Response id", true)], None)},
            "/api/v1/responses/{id}/undo": {"post": op("Undo a response: what it cut is let through again", "responder", vec![param("id", "path", "Response id", true)], None)},
        },
    })
}
