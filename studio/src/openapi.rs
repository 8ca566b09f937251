//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the HTTP API, built
//! from the route table (`routes::table`, which also builds the router and
//! the role checks) and the request bodies' wire types (`dto`, whose schemas
//! utoipa derives).

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
    /// The request body's wire type (`dto`), for writes that take one.
    pub(crate) body: Option<crate::dto::BodySchema>,
}

/// Query parameters a route needs (path, name, required, JSON schema).
const QUERY: &[(&str, &str, bool, &str)] = &[
    (
        "/calendar/add",
        "date",
        true,
        r#"{"type":"string","format":"date"}"#,
    ),
    (
        "/calendar/add",
        "n",
        false,
        r#"{"type":"integer","minimum":0,"maximum":3650}"#,
    ),
    (
        "/calendar/add",
        "unit",
        false,
        r#"{"enum":["workdays","days"]}"#,
    ),
    (
        "/calendar/diff",
        "from",
        true,
        r#"{"type":"string","format":"date"}"#,
    ),
    (
        "/calendar/diff",
        "to",
        true,
        r#"{"type":"string","format":"date"}"#,
    ),
];

/// Writes that take no request body (whatever is sent is ignored).
#[cfg(test)]
const NO_BODY: &[&str] = &[
    "/logout",
    "/users/{login}/tokens/{id}/revoke",
    "/users/{login}/disable",
    "/users/{login}/enable",
    "/cases/{no}/tasks/{step}/claim",
    "/cases/{no}/tasks/{step}/release",
];

/// The document of these routes.
pub(crate) fn document(routes: &[RouteInfo]) -> Value {
    let mut paths = Map::new();
    let mut components = Vec::new();
    for r in routes {
        let (method, path, tag, summary, roles) =
            (r.method.as_str(), r.path, r.tag, r.summary, r.roles);
        // Cards and adjustments have numeric ids; flows and rule files are named.
        let numeric = |name: &str| {
            name == "version"
                || (name == "id"
                    && (path.starts_with("/alarms") || path.starts_with("/efficiency")))
        };
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let schema = if name == "version" {
                    json!({"type": "integer", "minimum": 1, "maximum": u32::MAX})
                } else if numeric(name) {
                    json!({"type": "integer", "minimum": 1, "maximum": i64::MAX})
                } else {
                    json!({"type": "string", "minLength": 1})
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        params.extend(QUERY.iter().filter(|(p, ..)| *p == path).map(
            |(_, name, required, schema)| {
                json!({"name": name, "in": "query", "required": required,
                        "schema": serde_json::from_str::<Value>(schema).unwrap_or_default()})
            },
        ));
        let mut op = json!({
            "tags": [tag],
            "summary": summary,
            "x-roles": roles.split('|').collect::<Vec<_>>(),
            "parameters": params,
            "responses": {
                "200": {"description": "OK"},
                "201": {"description": "Created"},
                "204": {"description": "No content"},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"},
                "413": {"$ref": "#/components/responses/Error"},
                "422": {"$ref": "#/components/responses/Error"},
                "429": {"$ref": "#/components/responses/Error"},
            },
        });
        if let Some(body) = r.body {
            let schema = serde_json::to_value(body(&mut components)).unwrap_or_default();
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
    let schemas: Map<String, Value> = components
        .into_iter()
        .map(|(name, s)| (name, serde_json::to_value(s).unwrap_or_default()))
        .collect();
    let mut paths = Value::Object(paths);
    let mut schemas = Value::Object(schemas);
    no_nul(&mut paths);
    no_nul(&mut schemas);
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
            "schemas": schemas,
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

/// No text the API takes may hold NUL (U+0000; `extract::refuse_nul` answers
/// 400 `bad_request.nul`): every string schema without a pattern of its own
/// says so. Those with one exclude NUL themselves.
fn no_nul(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let is_string = m.get("type").is_some_and(|t| {
                t == "string"
                    || t.as_array()
                        .is_some_and(|a| a.iter().any(|x| x == "string"))
            });
            let free = !m.contains_key("pattern")
                && !m.contains_key("enum")
                && !m.contains_key("const")
                && !m.contains_key("format");
            if is_string && free {
                m.insert("pattern".into(), Value::String(NUL_FREE.into()));
            }
            // Nor may a key of a map.
            let is_object = m.get("type").is_some_and(|t| t == "object");
            if is_object && !m.contains_key("propertyNames") {
                m.insert("propertyNames".into(), json!({"pattern": NUL_FREE}));
            }
            m.values_mut().for_each(no_nul);
        }
        Value::Array(a) => a.iter_mut().for_each(no_nul),
        _ => {}
    }
}

/// A string without U+0000.
pub(crate) const NUL_FREE: &str = "^[^\\u0000]*$";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    fn infos() -> Vec<super::RouteInfo> {
        crate::routes::table().into_iter().map(|r| r.info).collect()
    }

    #[test]
    fn every_write_route_names_its_body_and_the_document_resolves_it() {
        let routes = infos();
        for r in &routes {
            let m = r.method.as_str();
            let writes = matches!(m, "post" | "put") && !super::NO_BODY.contains(&r.path);
            assert_eq!(
                r.body.is_some(),
                writes,
                "{m} {}: a write takes a body, a read or a NO_BODY write none",
                r.path
            );
        }
        let doc = super::document(&routes);
        let text = doc.to_string();
        // Every reference points at a schema of the document.
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap_or_default();
            assert!(schemas.contains_key(name), "dangling reference to {name}");
        }
        // The wire types' own words reach the document.
        let start = &schemas["StartBody"];
        assert_eq!(start["required"], serde_json::json!(["flow", "applicant"]));
        let complete = &schemas["CompleteBody"];
        assert_eq!(complete["properties"]["action"]["default"], "pass");
        assert_eq!(
            schemas["IdKind"]["enum"],
            serde_json::json!(["id_card", "credit_code"])
        );
        let rate = &schemas["RateBody"]["properties"]["score"];
        assert_eq!(
            (rate["minimum"].as_f64(), rate["maximum"].as_f64()),
            (Some(1.0), Some(5.0))
        );
        let cmd = &doc["paths"]["/api/cases/{no}/commands"]["post"]["requestBody"];
        assert_eq!(
            cmd["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CommandBody"
        );
        let variants = schemas["CommandBody"]["oneOf"].as_array().map(Vec::len);
        assert_eq!(variants, Some(7));
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
            "integration",
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
