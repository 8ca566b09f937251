//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the HTTP API, built
//! from the route table (`routes::table`, which also builds the router and
//! the role checks) and the request body schemas below.

use serde_json::{Map, Value, json};

/// An HTTP method of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
        }
    }
}

/// What the document says of a route (`routes::table` holds one per route).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RouteInfo {
    pub(crate) method: Method,
    /// Under `/api`.
    pub(crate) path: &'static str,
    pub(crate) tag: &'static str,
    pub(crate) summary: &'static str,
    /// `public`, `any`, `staff`, or role names joined by `|`.
    pub(crate) roles: &'static str,
}

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

/// The document of these routes.
pub(crate) fn document(routes: &[RouteInfo]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let (method, path, tag, summary, roles) =
            (r.method.as_str(), r.path, r.tag, r.summary, r.roles);
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
        if matches!(method, "post" | "put") && !NO_BODY.contains(&path) {
            let schema = BODIES
                .iter()
                .find(|(m, p, _)| *m == method && *p == path)
                .and_then(|(.., s)| serde_json::from_str::<Value>(s).ok())
                .unwrap_or_else(|| json!({"type": "object"}));
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        if roles == "public" {
            op["security"] = json!([]);
        }
        let entry = paths
            .entry(format!("/api{path}"))
            .or_insert_with(|| json!({}));
        entry[method] = op;
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

    fn infos() -> Vec<super::RouteInfo> {
        crate::routes::table().into_iter().map(|r| r.info).collect()
    }

    #[test]
    fn every_request_schema_parses_and_names_a_write_route() {
        let routes = infos();
        for (m, p, schema) in super::BODIES {
            assert!(
                serde_json::from_str::<serde_json::Value>(schema).is_ok(),
                "{m} {p}: schema is not JSON"
            );
            assert!(
                routes
                    .iter()
                    .any(|r| r.method.as_str() == *m && r.path == *p),
                "{m} {p} is not a route"
            );
        }
        // Every write that takes a body has its schema.
        for r in &routes {
            let m = r.method.as_str();
            if matches!(m, "post" | "put") && !super::NO_BODY.contains(&r.path) {
                assert!(
                    super::BODIES
                        .iter()
                        .any(|(bm, bp, _)| *bm == m && *bp == r.path),
                    "{m} {} has no request schema",
                    r.path
                );
            }
        }
    }

    #[test]
    fn each_route_is_in_the_table_once_with_a_role_rule() {
        let routes = infos();
        let keys: BTreeSet<(&str, &str)> =
            routes.iter().map(|r| (r.method.as_str(), r.path)).collect();
        assert_eq!(keys.len(), routes.len(), "a route is in the table twice");
        let known = [
            "public",
            "any",
            "staff",
            "admin",
            "deployer",
            "analyst",
            "supervisor",
        ];
        for r in &routes {
            for role in r.roles.split('|') {
                assert!(
                    known.contains(&role),
                    "{} {}: role `{role}`",
                    r.method.as_str(),
                    r.path
                );
            }
        }
        let doc = super::document(&routes);
        let paths: BTreeSet<&str> = routes.iter().map(|r| r.path).collect();
        assert_eq!(doc["paths"].as_object().map(|p| p.len()), Some(paths.len()));
        assert_eq!(
            doc["paths"]["/api/health"]["get"]["security"],
            serde_json::json!([])
        );
    }
}
