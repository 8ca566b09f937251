//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the HTTP API, built
//! from one table of routes. A test reads the route definitions in this
//! crate's sources and fails when the table and the router disagree.

use serde_json::{Map, Value, json};

/// (method, path under /api, tag, summary, roles that may call it: `any`
/// authenticated caller, `staff` (clerk or reviewer), or role names joined by
/// `|`; `admin` may call everything)
pub const ROUTES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "get",
        "/me",
        "users",
        "The caller: login, name, roles (and the session's CSRF token)",
        "any",
    ),
    (
        "post",
        "/timers",
        "flows",
        "The deadlines of a flow text; with `set`, the text with one literal rewritten (comments and layout kept)",
        "any",
    ),
    (
        "put",
        "/flows/{id}/source",
        "flows",
        "Deploy a new version of one flow from its text (valid, same id); the same text deploys once",
        "deployer",
    ),
    (
        "post",
        "/flows/{id}/diff",
        "flows",
        "Line diff from the running version's text to a new text",
        "analyst|deployer",
    ),
    (
        "get",
        "/flows/{id}/versions/{version}",
        "flows",
        "The text of one deployed version",
        "any",
    ),
    (
        "get",
        "/rules/files",
        "supervision",
        "The rule files in force (latest versions) with their texts; the efficiency scheme",
        "any",
    ),
    (
        "put",
        "/rules/files/{file}",
        "supervision",
        "Deploy a new version of a rule file (or a new file); in force at once when the whole rule book builds",
        "supervisor",
    ),
    (
        "post",
        "/rules/files/{file}/diff",
        "supervision",
        "Line diff from the rule file's version in force to a new text",
        "supervisor|analyst",
    ),
    (
        "get",
        "/rules/files/{file}/versions",
        "supervision",
        "Every deployed version of a rule file",
        "any",
    ),
    (
        "get",
        "/rules/files/{file}/versions/{version}",
        "supervision",
        "The text of one version of a rule file",
        "any",
    ),
    (
        "post",
        "/rules/try",
        "supervision",
        "Evaluate the rules of a text on a stored case (no card is stored)",
        "analyst|supervisor",
    ),
    (
        "get",
        "/calendar",
        "calendar",
        "The calendar in force: official years (versions), how far it covers, the coverage warning, holidays and make-up days, the provisional rule",
        "any",
    ),
    (
        "post",
        "/calendar/preview",
        "calendar",
        "Check a year's official arrangement (holiday-cn JSON or plain text) and list its changes against the calendar in force; nothing is stored",
        "admin",
    ),
    (
        "post",
        "/calendar/years",
        "calendar",
        "Deploy a year's official arrangement (national or a region's): versioned, audited, in force on every node, open cases' provisional deadlines recomputed",
        "admin",
    ),
    (
        "get",
        "/health",
        "server",
        "Liveness; needs no token",
        "any",
    ),
    (
        "post",
        "/login",
        "users",
        "Log in: a session cookie and a CSRF token",
        "any",
    ),
    ("post", "/logout", "users", "End the session", "any"),
    ("get", "/openapi.json", "server", "This document", "any"),
    (
        "get",
        "/flows",
        "flows",
        "Deployed flows (latest source, version as written, deployed version)",
        "any",
    ),
    (
        "get",
        "/flows/{id}",
        "flows",
        "One flow's latest source",
        "any",
    ),
    ("get", "/flows/{id}/ir", "flows", "The flow's IR", "any"),
    (
        "get",
        "/flows/{id}/graph.svg",
        "flows",
        "The flow's diagram (SVG)",
        "any",
    ),
    (
        "get",
        "/flows/{id}/deployments",
        "flows",
        "Every deployed version of the flow",
        "any",
    ),
    (
        "post",
        "/validate",
        "flows",
        "Diagnostics of a flow text (with its diagram and deadlines) or of a rule file",
        "any",
    ),
    ("get", "/audit", "server", "The latest audit rows", "admin"),
    ("get", "/packs", "packs", "Process packs", "any"),
    (
        "post",
        "/packs",
        "packs",
        "Deploy a pack: all its flows or none",
        "deployer",
    ),
    ("post", "/cases", "cases", "Register a case", "staff"),
    ("get", "/cases", "cases", "List cases, newest first", "any"),
    (
        "get",
        "/cases/{no}",
        "cases",
        "A case: status, open tasks, deadlines with working days left",
        "any",
    ),
    (
        "get",
        "/cases/{no}/events",
        "cases",
        "The case's event log",
        "any",
    ),
    (
        "get",
        "/cases/{no}/exchange",
        "cases",
        "The six exchange record types",
        "any",
    ),
    (
        "post",
        "/cases/{no}/commands",
        "cases",
        "Any command, as {\"command\": …}",
        "staff",
    ),
    (
        "post",
        "/cases/{no}/tasks/{step}/complete",
        "tasks",
        "Complete the open task at a step",
        "staff",
    ),
    (
        "post",
        "/cases/{no}/tasks/{step}/claim",
        "cases",
        "Claim (认领) the open task at a step: a member of its department; 409 when someone else holds it",
        "staff",
    ),
    (
        "post",
        "/cases/{no}/tasks/{step}/release",
        "cases",
        "Release a claim: its holder or a supervisor",
        "staff|supervisor",
    ),
    (
        "post",
        "/cases/{no}/special/start",
        "cases",
        "Start a special procedure",
        "staff",
    ),
    (
        "post",
        "/cases/{no}/special/end",
        "cases",
        "End a special procedure",
        "staff",
    ),
    (
        "post",
        "/cases/{no}/materials",
        "cases",
        "The applicant supplies materials",
        "staff",
    ),
    (
        "post",
        "/cases/{no}/terminate",
        "cases",
        "Terminate (中止)",
        "staff",
    ),
    (
        "post",
        "/cases/{no}/withdraw",
        "cases",
        "Withdraw (撤回)",
        "staff",
    ),
    (
        "get",
        "/tasks",
        "tasks",
        "The work list by department and role",
        "staff|supervisor",
    ),
    (
        "get",
        "/calendar/add",
        "calendar",
        "Add working days or days to a date",
        "any",
    ),
    (
        "get",
        "/calendar/diff",
        "calendar",
        "Working days between two dates",
        "any",
    ),
    (
        "get",
        "/rules",
        "supervision",
        "Supervision rules with their last evaluation error",
        "any",
    ),
    (
        "get",
        "/notifications",
        "supervision",
        "The notification outbox",
        "any",
    ),
    (
        "get",
        "/alarms",
        "supervision",
        "Cards (预警/黄牌/红牌), filtered",
        "any",
    ),
    ("get", "/alarms/{id}", "supervision", "One card", "any"),
    (
        "post",
        "/alarms/{id}/acknowledge",
        "supervision",
        "The card's department has seen it",
        "staff",
    ),
    (
        "post",
        "/alarms/{id}/appeal",
        "supervision",
        "The card's department appeals",
        "staff",
    ),
    (
        "post",
        "/alarms/{id}/decide",
        "supervision",
        "A supervisor decides the appeal",
        "supervisor",
    ),
    (
        "post",
        "/alarms/{id}/order",
        "supervision",
        "A supervisor issues a supervision order",
        "supervisor",
    ),
    (
        "post",
        "/alarms/{id}/close",
        "supervision",
        "A supervisor closes a card after checking it",
        "supervisor",
    ),
    ("get", "/orders", "supervision", "Supervision orders", "any"),
    (
        "post",
        "/orders/{no}/reply",
        "supervision",
        "The addressed department replies",
        "staff",
    ),
    (
        "post",
        "/complaints",
        "supervision",
        "File a complaint",
        "staff|supervisor",
    ),
    ("get", "/complaints", "supervision", "Complaints", "any"),
    (
        "post",
        "/cases/{no}/rating",
        "supervision",
        "Rate a finished case (1–5)",
        "any",
    ),
    (
        "get",
        "/cases/{no}/rating",
        "supervision",
        "A case's ratings",
        "any",
    ),
    (
        "get",
        "/stats",
        "statistics",
        "Statistics per department or item and period",
        "any",
    ),
    (
        "get",
        "/efficiency",
        "statistics",
        "Efficiency grades per department for a month",
        "any",
    ),
    (
        "post",
        "/efficiency/adjustments",
        "statistics",
        "A supervisor's manual adjustment",
        "supervisor",
    ),
    (
        "post",
        "/efficiency/adjustments/{id}/{action}",
        "statistics",
        "Appeal or decide an adjustment",
        "staff|supervisor",
    ),
    ("get", "/users", "users", "Users and their roles", "admin"),
    ("post", "/users", "users", "Add a user", "admin"),
    (
        "post",
        "/users/{login}/tokens",
        "users",
        "Make an API token for a user (shown once)",
        "admin",
    ),
];

/// Request bodies (JSON Schema, as text) by (method, path). Routes that take
/// a body and are not listed here are documented as a plain object.
const BODIES: &[(&str, &str, &str)] = &[
    (
        "post",
        "/calendar/preview",
        r##"{"type":"object","required":["text"],"additionalProperties":false,"properties":{"text":{"type":"string","description":"holiday-cn JSON or plain text: `DATE off|work [name]` a line"},"region":{"type":"string","description":"CN or a 6-digit division code"},"file":{"type":"string"}}}"##,
    ),
    (
        "post",
        "/calendar/years",
        r##"{"type":"object","required":["text"],"additionalProperties":false,"properties":{"text":{"type":"string","description":"holiday-cn JSON or plain text: `DATE off|work [name]` a line"},"region":{"type":"string","description":"CN or a 6-digit division code"},"file":{"type":"string"}}}"##,
    ),
    (
        "post",
        "/login",
        r#"{"type":"object","required":["login","password"],"properties":{"login":{"type":"string"},"password":{"type":"string"}}}"#,
    ),
    (
        "post",
        "/users",
        r#"{"type":"object","required":["login","name","roles"],"properties":{"login":{"type":"string","pattern":"^[A-Za-z0-9_.-]{1,64}$"},"name":{"type":"string"},"password":{"type":"string","minLength":10},"roles":{"type":"array","items":{"type":"object","required":["role"],"properties":{"role":{"enum":["admin","analyst","deployer","clerk","reviewer","supervisor"]},"department":{"type":"string"},"position":{"type":"string"}}}}}}"#,
    ),
    (
        "post",
        "/users/{login}/tokens",
        r#"{"type":"object","properties":{"label":{"type":"string"}}}"#,
    ),
    (
        "post",
        "/validate",
        r#"{"type":"object","required":["source"],"properties":{"source":{"type":"string"},"syntax":{"enum":["dsl","yaml"]},"kind":{"enum":["flow","rules"]},"name":{"type":"string"}}}"#,
    ),
    (
        "post",
        "/timers",
        r#"{"type":"object","required":["source"],"properties":{"source":{"type":"string"},"syntax":{"enum":["dsl","yaml"]},"set":{"type":"object","required":["key","value","unit"],"properties":{"key":{"type":"string"},"value":{"type":"integer","minimum":1,"maximum":3650},"unit":{"enum":["workdays","days","hours"]}}}}}"#,
    ),
    (
        "put",
        "/flows/{id}/source",
        r##"{"$ref":"#/components/schemas/Source"}"##,
    ),
    (
        "post",
        "/flows/{id}/diff",
        r##"{"$ref":"#/components/schemas/Source"}"##,
    ),
    (
        "put",
        "/rules/files/{file}",
        r##"{"$ref":"#/components/schemas/Source"}"##,
    ),
    (
        "post",
        "/rules/files/{file}/diff",
        r##"{"$ref":"#/components/schemas/Source"}"##,
    ),
    (
        "post",
        "/rules/try",
        r#"{"type":"object","required":["source","case"],"properties":{"source":{"type":"string"},"syntax":{"enum":["dsl","yaml"]},"case":{"type":"string"},"at":{"type":"string","description":"YYYY-MM-DDTHH:MM:SS, China time"}}}"#,
    ),
    (
        "post",
        "/packs",
        r#"{"type":"object","required":["manifest","files"],"properties":{"manifest":{"type":"string"},"files":{"type":"object","additionalProperties":{"type":"string"}}}}"#,
    ),
    (
        "post",
        "/cases",
        r##"{"type":"object","required":["flow","applicant"],"properties":{"flow":{"type":"string"},"applicant":{"$ref":"#/components/schemas/Person"},"agent":{"$ref":"#/components/schemas/Person"},"source":{"type":"string"},"project_code":{"type":"string"},"data":{"type":"object"},"materials":{"type":"array","items":{"type":"object","required":["id"],"properties":{"id":{"type":"string"},"how":{"type":"string"},"count":{"type":"integer"}}}}}}"##,
    ),
    (
        "post",
        "/cases/{no}/commands",
        r#"{"type":"object","required":["command"],"properties":{"command":{"type":"string"}}}"#,
    ),
    (
        "post",
        "/cases/{no}/tasks/{step}/complete",
        r##"{"type":"object","required":["by"],"properties":{"by":{"$ref":"#/components/schemas/Actor"},"action":{"type":"string","default":"pass"},"opinion":{"type":"string"},"data":{"type":"object"},"missing":{"type":"array","items":{"type":"string"}},"fixes":{"type":"object","additionalProperties":{"type":"string"},"description":"for correct: what to fix, by material (required for a material already received)"},"defer":{"type":"array","items":{"type":"string"}},"defer_within":{"type":"string"},"document_no":{"type":"string"},"on_site":{"type":"boolean","description":"the applicant was there (default: yes the first time a visit step completes)"}}}"##,
    ),
    (
        "post",
        "/cases/{no}/special/start",
        r##"{"type":"object","required":["step","kind","reason","by"],"properties":{"step":{"type":"string"},"kind":{"type":"string"},"reason":{"type":"string"},"days":{"type":"integer"},"notice":{"type":"string","description":"the written notice to the applicant (行政许可法第四十五条), required when the procedure stops the statutory clock"},"by":{"$ref":"#/components/schemas/Actor"}}}"##,
    ),
    (
        "post",
        "/cases/{no}/special/end",
        r##"{"type":"object","required":["step","kind","result","by"],"properties":{"step":{"type":"string"},"kind":{"type":"string"},"result":{"type":"string"},"opinion":{"type":"string"},"approved":{"type":"boolean"},"by":{"$ref":"#/components/schemas/Actor"}}}"##,
    ),
    (
        "post",
        "/cases/{no}/materials",
        r#"{"type":"object","required":["materials"],"properties":{"materials":{"type":"array","items":{"type":"object","required":["id"],"properties":{"id":{"type":"string"}}}},"data":{"type":"object"},"on_site":{"type":"boolean","description":"the applicant brought them to the window (their own choice, unless the item's corrections need them on site)"}}}"#,
    ),
    (
        "post",
        "/cases/{no}/terminate",
        r##"{"type":"object","required":["reason","by"],"properties":{"reason":{"type":"string"},"by":{"$ref":"#/components/schemas/Actor"}}}"##,
    ),
    (
        "post",
        "/cases/{no}/withdraw",
        r#"{"type":"object","required":["reason"],"properties":{"reason":{"type":"string"}}}"#,
    ),
    (
        "post",
        "/alarms/{id}/acknowledge",
        r##"{"type":"object","required":["by"],"properties":{"by":{"$ref":"#/components/schemas/Actor"},"note":{"type":"string"}}}"##,
    ),
    (
        "post",
        "/alarms/{id}/appeal",
        r##"{"type":"object","required":["by","reason"],"properties":{"by":{"$ref":"#/components/schemas/Actor"},"reason":{"type":"string"}}}"##,
    ),
    (
        "post",
        "/alarms/{id}/decide",
        r##"{"type":"object","required":["by","outcome"],"properties":{"by":{"$ref":"#/components/schemas/Actor"},"outcome":{"enum":["revoke","reject","escalate"]},"opinion":{"type":"string"}}}"##,
    ),
    (
        "post",
        "/alarms/{id}/close",
        r##"{"type":"object","required":["by","opinion"],"properties":{"by":{"$ref":"#/components/schemas/Actor"},"opinion":{"type":"string"}}}"##,
    ),
    (
        "post",
        "/alarms/{id}/order",
        r##"{"type":"object","required":["by"],"properties":{"by":{"$ref":"#/components/schemas/Actor"},"to":{"type":"string"},"reason":{"type":"string"}}}"##,
    ),
    (
        "post",
        "/orders/{no}/reply",
        r##"{"type":"object","required":["by","reply"],"properties":{"by":{"$ref":"#/components/schemas/Actor"},"reply":{"type":"string"}}}"##,
    ),
    (
        "post",
        "/complaints",
        r##"{"type":"object","required":["complainant","addressee","content"],"properties":{"complainant":{"$ref":"#/components/schemas/Person"},"addressee":{"type":"string"},"case":{"type":"string"},"staff":{"type":"string"},"content":{"type":"string"},"source":{"type":"string"}}}"##,
    ),
    (
        "post",
        "/cases/{no}/rating",
        r#"{"type":"object","required":["account","score"],"properties":{"account":{"type":"string"},"score":{"type":"integer","minimum":1,"maximum":5},"reason":{"type":"string"}}}"#,
    ),
    (
        "post",
        "/efficiency/adjustments",
        r##"{"type":"object","required":["by","department","period","delta","reason"],"properties":{"by":{"$ref":"#/components/schemas/Actor"},"department":{"type":"string"},"period":{"type":"string","pattern":"^[0-9]{4}-[0-9]{2}$"},"delta":{"type":"number"},"reason":{"type":"string"}}}"##,
    ),
    (
        "post",
        "/efficiency/adjustments/{id}/{action}",
        r##"{"type":"object","required":["by"],"properties":{"by":{"$ref":"#/components/schemas/Actor"},"reason":{"type":"string"},"outcome":{"type":"string"}}}"##,
    ),
];

/// Writes that take no request body (whatever is sent is ignored).
const NO_BODY: &[&str] = &[
    "/logout",
    "/cases/{no}/tasks/{step}/claim",
    "/cases/{no}/tasks/{step}/release",
];

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, tag, summary, roles) in ROUTES {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "tags": [tag],
            "summary": summary,
            "x-roles": roles.split('|').collect::<Vec<_>>(),
            "parameters": params,
            "responses": {
                "200": {"description": "OK"},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"},
                "422": {"$ref": "#/components/responses/Error"},
            },
        });
        if matches!(*method, "post" | "put") && !NO_BODY.contains(path) {
            let schema = BODIES
                .iter()
                .find(|(m, p, _)| m == method && p == path)
                .and_then(|(.., s)| serde_json::from_str::<Value>(s).ok())
                .unwrap_or_else(|| json!({"type": "object"}));
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        if matches!(*path, "/health" | "/login" | "/logout") {
            op["security"] = json!([]);
        }
        let entry = paths
            .entry(format!("/api{path}"))
            .or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "govflow",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Approval flows, cases, legal clocks and supervision. Errors are {code, message, details}; see docs/engine.md.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Actor": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "department": {"type": "string", "description": "a department id of the flow"},
                    "role": {"type": "string"}}},
                "Person": {"type": "object", "required": ["name", "id_kind", "id_number"], "properties": {
                    "name": {"type": "string"}, "id_kind": {"enum": ["id_card", "credit_code"]},
                    "id_number": {"type": "string"}, "legacy": {"type": "boolean"}}},
                "Source": {"type": "object", "required": ["source"], "properties": {
                    "source": {"type": "string"}, "syntax": {"enum": ["dsl", "yaml"]}}},
            },
            "responses": {"Error": {
                "description": "An error",
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {},
                    },
                }}},
            }},
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every `.route("PATH", get(…).post(…))` in this crate's sources, as
    /// (method, path) pairs.
    fn routes_in_sources() -> BTreeSet<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = BTreeSet::new();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_name() == "openapi.rs" {
                continue; // this file quotes `.route(` itself
            }
            let text = std::fs::read_to_string(e.path()).unwrap();
            let mut rest = text.as_str();
            while let Some(i) = rest.find(".route(") {
                rest = &rest[i + ".route(".len()..];
                let Some(q1) = rest.find('"') else { break };
                let Some(q2) = rest[q1 + 1..].find('"') else {
                    break;
                };
                let path = rest[q1 + 1..q1 + 1 + q2].to_string();
                // The handlers, up to the call's closing parenthesis.
                let body = &rest[q1 + 1 + q2..];
                let mut depth = 1;
                let mut end = body.len();
                for (k, c) in body.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = k;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let call = &body[..end];
                for m in ["get", "post", "put", "delete", "patch"] {
                    if call.contains(&format!("{m}(")) {
                        out.insert((m.to_string(), path.clone()));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_request_schema_parses_and_names_a_write_route() {
        for (m, p, schema) in super::BODIES {
            assert!(
                serde_json::from_str::<serde_json::Value>(schema).is_ok(),
                "{m} {p}: the schema is not JSON"
            );
            assert!(
                super::ROUTES.iter().any(|(rm, rp, ..)| rm == m && rp == p),
                "{m} {p} is not a route"
            );
        }
        // Every write that takes a body has its schema.
        for (m, p, ..) in super::ROUTES {
            if matches!(*m, "post" | "put") && !super::NO_BODY.contains(p) {
                assert!(
                    super::BODIES.iter().any(|(bm, bp, _)| bm == m && bp == p),
                    "{m} {p} has no request schema"
                );
            }
        }
    }

    #[test]
    fn the_document_matches_the_routes() {
        let mut routed = routes_in_sources();
        // The studio page and its assets are not under /api.
        routed.retain(|(_, p)| p != "/" && !p.starts_with("/assets/"));
        let documented: BTreeSet<(String, String)> = super::ROUTES
            .iter()
            .map(|(m, p, ..)| (m.to_string(), p.to_string()))
            .collect();
        let missing: Vec<_> = routed.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty(),
            "routes missing from the OpenAPI table: {missing:?}"
        );
        assert!(
            stale.is_empty(),
            "documented routes that do not exist: {stale:?}"
        );
        let doc = super::document();
        assert_eq!(
            doc["paths"].as_object().unwrap().len(),
            documented
                .iter()
                .map(|(_, p)| p)
                .collect::<BTreeSet<_>>()
                .len()
        );
    }
}
