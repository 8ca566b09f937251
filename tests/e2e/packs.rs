//! Process packs: the shipped manifests check clean, and a pack deploys
//! through the API as one unit — or not at all, with every diagnostic.

use super::server::{Server, call, free_port, start_body};
use super::support::{govflow, temp_dir};
use serde_json::json;

#[test]
fn shipped_packs_check_clean() {
    let o = govflow(&["check", "flows"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(" pack manifests and ") && err.contains(" scenarios: 0 errors, 0 warnings"),
        "{err}"
    );
}

#[test]
fn a_broken_manifest_is_reported_with_line_and_column() {
    let dir = temp_dir("pack-broken");
    std::fs::copy(
        "flows/market/individual_business_registration.flow",
        dir.join("a.flow"),
    )
    .unwrap();
    std::fs::write(
        dir.join("pack.yaml"),
        "pack: p\nname: 测试包\ndepartment: 某局\nversoin: 1\nflows: [a.flow, missing.flow]\n",
    )
    .unwrap();
    let d = dir.display().to_string();
    let o = govflow(&["check", &d, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let diags: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let codes: Vec<(String, u64, u64)> = diags
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        codes.contains(&("pack::unknown_key".into(), 4, 1)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&("pack::missing_file".into(), 5, 17)),
        "{codes:?}"
    );
    assert!(
        codes.iter().any(|c| c.0 == "pack::missing_key"),
        "{codes:?}"
    );
}

fn pack_body(flow_text: &str) -> serde_json::Value {
    json!({
        "manifest": "pack: demo\nname: 演示包\ndepartment: 区市场监督管理局\nversion: 1.0.0\nflows: [demo.flow, other.flow]\n",
        "files": {
            "demo.flow": flow_text,
            "other.flow": std::fs::read_to_string("flows/food/food_business_license.flow").unwrap(),
        }
    })
}

#[test]
fn a_pack_deploys_whole_or_not_at_all() {
    let dir = temp_dir("pack-api");
    let db = format!("sqlite://{}", dir.join("p.db").display());
    let port = free_port();
    let server = Server::start(&db, port, &[], &[]);
    let good = std::fs::read_to_string("flows/market/individual_business_registration.flow")
        .unwrap()
        .replace(
            "flow individual_business_registration",
            "flow demo_registration",
        );
    let broken = good.replace("by amr.registrar", "by amr.nobody");
    let (_, before) = call(port, "GET", "/api/flows", None, None).unwrap();
    let (_, audit_before) = call(port, "GET", "/api/audit", None, None).unwrap();

    // One broken file: 422, every diagnostic, nothing deployed.
    let (status, v) = call(port, "POST", "/api/packs", None, Some(&pack_body(&broken))).unwrap();
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("pack.invalid")),
        "{v}"
    );
    let diags = v["details"]["diagnostics"].as_array().unwrap();
    assert!(
        diags
            .iter()
            .any(|d| d["code"] == "flow::unknown_role" && d["file"] == "demo.flow"),
        "{v}"
    );
    let (_, after) = call(port, "GET", "/api/flows", None, None).unwrap();
    assert_eq!(before["total"], after["total"]);
    let (_, audit_after) = call(port, "GET", "/api/audit", None, None).unwrap();
    assert_eq!(
        audit_before["items"].as_array().unwrap().len(),
        audit_after["items"].as_array().unwrap().len()
    );
    let mut body = start_body();
    body["flow"] = json!("demo_registration");
    assert_eq!(
        call(port, "POST", "/api/cases", None, Some(&body))
            .unwrap()
            .0,
        404
    );

    // Fixed: the whole pack deploys; the new flow takes cases at once.
    let (status, v) = call(port, "POST", "/api/packs", None, Some(&pack_body(&good))).unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["deployed"].as_array().unwrap().len(), 2, "{v}");
    let (_, packs) = call(port, "GET", "/api/packs", None, None).unwrap();
    assert!(
        packs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "demo"),
        "{packs}"
    );
    let (_, flow) = call(port, "GET", "/api/flows/demo_registration", None, None).unwrap();
    assert_eq!(flow["id"], "demo_registration", "{flow}");
    let mut body = start_body();
    body["flow"] = json!("demo_registration");
    body["applicant"] =
        json!({"name": "李秀英", "id_kind": "id_card", "id_number": "11010519491231002X"});
    body["materials"] = json!([{"id": "application"}, {"id": "operator_id"}, {"id": "premises"}]);
    body["data"] = json!({"operator_id_check": "通过", "name_declared": true, "no_name": false,
                          "trade_name": "西湖区秀英便利店", "missing_materials": []});
    let (status, v) = call(port, "POST", "/api/cases", None, Some(&body)).unwrap();
    assert_eq!(status, 201, "{v}");
    let (_, case) = call(
        port,
        "GET",
        &format!("/api/cases/{}", v["case_no"].as_str().unwrap()),
        None,
        None,
    )
    .unwrap();
    assert_eq!(case["flow"], "demo_registration", "{case}");

    // After a restart the deployed pack and its flows are still listed.
    server.kill9();
    let _server = Server::start(&db, port, &[], &[]);
    let (_, flow) = call(port, "GET", "/api/flows/demo_registration", None, None).unwrap();
    assert_eq!(flow["deployed_version"], 1, "{flow}");
    let (_, packs) = call(port, "GET", "/api/packs", None, None).unwrap();
    assert!(
        packs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "demo"),
        "{packs}"
    );
}
