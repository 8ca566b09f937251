//! Who may send which command: the rule beyond the route's roles, for every
//! command kind. A command that names its actor (`by`) is checked against
//! the caller's grants (`Principal::check_actor`) and then by the core
//! against the task; the others are checked here against the case — its
//! window (the department that accepted it, or holds its acceptance task)
//! and the departments holding its open tasks. docs/engine.md has the table
//! (a test keeps it complete); `who_may` matches every command, so a new
//! command kind does not compile without its rule.

use crate::auth::Principal;
use crate::error::ApiError;
use axum::http::StatusCode;
use govflow_engine::core::{CaseState, Command, CompiledFlow};

/// Who may send a command (administrators always may).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    /// Staff of a department the flow declares.
    FlowDepartment,
    /// `by` is a department (and position) the caller holds; the core then
    /// checks it against the task.
    By,
    /// `by` as above, and the caller works at the case's window or holds
    /// one of its open tasks.
    ByAtWindowOrHolder,
    /// Staff of the case's window.
    Window,
    /// Staff of the case's window or of a department holding an open task
    /// (a correction can be asked at any step).
    WindowOrHolder,
    /// Staff of the case's window, or an integration account (a payment
    /// platform, a licence library).
    WindowOrIntegration,
    /// An integration account (the item case's system reporting back).
    Integration,
    /// Only the engine itself (timers, calendars, stage clocks).
    Engine,
}

/// The rule for a command kind.
pub(crate) fn who_may(c: &Command) -> Who {
    match c {
        Command::Start { .. } => Who::FlowDepartment,
        Command::SubmitMaterials { .. } => Who::WindowOrHolder,
        Command::Complete { .. } => Who::By,
        Command::StartSpecial { .. } => Who::By,
        Command::EndSpecial { .. } => Who::By,
        Command::Signal { .. } => Who::WindowOrIntegration,
        Command::SubcaseFinished { .. } => Who::Integration,
        Command::SubcaseClock { .. } => Who::Engine,
        Command::Terminate { .. } => Who::ByAtWindowOrHolder,
        Command::Withdraw { .. } => Who::Window,
        Command::Fire { .. } => Who::Engine,
        Command::Recalendar { .. } => Who::Engine,
    }
}

/// Whether the rule needs the case (the caller's place in it).
pub(crate) fn needs_case(w: Who) -> bool {
    matches!(
        w,
        Who::ByAtWindowOrHolder | Who::Window | Who::WindowOrHolder | Who::WindowOrIntegration
    )
}

/// The case's window: the department that accepted it; before acceptance,
/// the departments holding its open tasks (the acceptance task).
fn window(case: &CaseState) -> Vec<String> {
    match case.accepted_by.as_ref().and_then(|a| a.department.clone()) {
        Some(d) => vec![d],
        None => holders(case),
    }
}

fn holders(case: &CaseState) -> Vec<String> {
    case.tasks.values().map(|t| t.department.clone()).collect()
}

fn denied(principal: &Principal, what: &str, allowed: &[String]) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "auth.wrong_department",
        format!(
            "{0} 无权执行 {what}：{1} / {0} may not {what}: {2}",
            principal.login(),
            if allowed.is_empty() {
                "此时没有部门可以执行".to_string()
            } else {
                format!("应由 {} 办理", allowed.join("、"))
            },
            if allowed.is_empty() {
                "no department may at this point".to_string()
            } else {
                format!("it is for {}", allowed.join(", "))
            }
        ),
    )
}

/// Checks a command against the caller: `case` is the case it addresses
/// (loaded when `needs_case`), `flow` the flow it starts.
pub(crate) fn authorize(
    principal: &Principal,
    command: &Command,
    case: Option<&CaseState>,
    flow: Option<&CompiledFlow>,
) -> Result<(), ApiError> {
    if principal.has_role("admin") {
        return Ok(());
    }
    let mine = principal.departments().unwrap_or_default();
    let any_of = |allowed: Vec<String>, what: &str| {
        if allowed.iter().any(|d| mine.contains(d)) {
            Ok(())
        } else {
            Err(denied(principal, what, &allowed))
        }
    };
    let what = command.name();
    match who_may(command) {
        Who::By => Ok(()),
        Who::FlowDepartment => {
            let allowed: Vec<String> = flow
                .map(|f| f.flow.departments.iter().map(|d| d.id.clone()).collect())
                .unwrap_or_default();
            any_of(allowed, "start a case of this flow")
        }
        Who::Window => any_of(case.map(window).unwrap_or_default(), what),
        Who::WindowOrHolder | Who::ByAtWindowOrHolder => {
            let mut allowed = case.map(window).unwrap_or_default();
            allowed.extend(case.map(holders).unwrap_or_default());
            allowed.sort();
            allowed.dedup();
            // Acting as `by`: that department itself must be the window or
            // a holder, not just one of the caller's others.
            if let Command::Terminate { by, .. } = command
                && !by.department.as_ref().is_some_and(|d| allowed.contains(d))
            {
                return Err(denied(principal, what, &allowed));
            }
            any_of(allowed, what)
        }
        Who::WindowOrIntegration => {
            if principal.has_role("integration") {
                return Ok(());
            }
            any_of(case.map(window).unwrap_or_default(), what)
        }
        Who::Integration => {
            if principal.has_role("integration") {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "auth.forbidden",
                    format!(
                        "{what} 由对接系统账号报送 / {what} is reported by an integration account"
                    ),
                ))
            }
        }
        Who::Engine => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{what} 由引擎自行执行，不能提交 / {what} is the engine's own; it is not sent"),
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::testkit::{ADMIN, CLERK, app, call};
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    /// A user with one grant and an API token.
    async fn user(
        state: &crate::state::AppState,
        login: &str,
        role: &str,
        dept: Option<&str>,
    ) -> String {
        use govflow_engine::store::users::{Grant, User};
        let u = User {
            login: login.into(),
            name: login.into(),
            roles: vec![Grant {
                role: role.into(),
                department: dept.map(str::to_string),
                position: None,
            }],
            disabled: false,
        };
        let store = &state.engine().store;
        store
            .create_user(&u, None, "test", state.now())
            .await
            .unwrap();
        let token = format!("{login}-token");
        store
            .add_token(
                login,
                &crate::auth::token_hash(&token),
                "test",
                state.now() + chrono::Duration::days(1),
                "test",
                state.now(),
            )
            .await
            .unwrap();
        token
    }

    /// The commands that name no actor are checked against the case: a
    /// clerk of another department may not withdraw a case, add materials to
    /// it or signal its wait; the window may; an integration account may
    /// signal and report an item case but not withdraw; engine commands are
    /// never sent.
    #[tokio::test]
    async fn commands_without_an_actor_are_checked_against_the_case() {
        let (app, state) = app("authz").await;
        let outsider = user(&state, "env_clerk", "clerk", Some("env")).await;
        let integration = user(&state, "payments", "integration", None).await;
        let start = json!({
            "flow": "parallel_approval",
            "applicant": {"name": "杭州示例科技有限公司", "id_kind": "credit_code", "id_number": "91110000600037341L"},
            "materials": [{"id": "application"}, {"id": "project_doc"}],
        });
        let (s, v) = call(&app, "POST", "/api/cases", Some(CLERK), Some(start.clone())).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let no = v["case_no"].as_str().unwrap().to_string();
        // An integration account is not staff of a flow department: no start.
        let (s, _) = call(&app, "POST", "/api/cases", Some(&integration), Some(start)).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let materials = json!({"materials": [{"id": "land_doc"}]});
        let withdraw = json!({"reason": "申请人撤回"});
        let signal = json!({"command": "signal", "name": "paid", "data": {"amount": 999999}});
        let finished = json!({"command": "subcase_finished", "step": "s", "item": "i", "case_no": "x", "result": "ok"});
        for (path, body) in [
            (format!("/api/cases/{no}/materials"), materials.clone()),
            (format!("/api/cases/{no}/withdraw"), withdraw.clone()),
            (format!("/api/cases/{no}/commands"), signal.clone()),
        ] {
            let (s, v) = call(&app, "POST", &path, Some(&outsider), Some(body)).await;
            assert_eq!(
                (s, v["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("auth.wrong_department")),
                "{path}: {v}"
            );
        }
        // The integration account may signal (the case waits for nothing:
        // the core refuses it, not the authorisation) and report an item
        // case, but not withdraw.
        let (s, v) = call(
            &app,
            "POST",
            &format!("/api/cases/{no}/commands"),
            Some(&integration),
            Some(signal),
        )
        .await;
        assert_ne!(s, StatusCode::FORBIDDEN, "{v}");
        let (s, v) = call(
            &app,
            "POST",
            &format!("/api/cases/{no}/commands"),
            Some(&integration),
            Some(finished.clone()),
        )
        .await;
        assert_ne!(s, StatusCode::FORBIDDEN, "{v}");
        let (s, _) = call(
            &app,
            "POST",
            &format!("/api/cases/{no}/commands"),
            Some(CLERK),
            Some(finished),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = call(
            &app,
            "POST",
            &format!("/api/cases/{no}/withdraw"),
            Some(&integration),
            Some(withdraw.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // The window adds the missing material and may withdraw.
        let (s, v) = call(
            &app,
            "POST",
            &format!("/api/cases/{no}/materials"),
            Some(CLERK),
            Some(materials),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = call(
            &app,
            "POST",
            &format!("/api/cases/{no}/withdraw"),
            Some(CLERK),
            Some(withdraw),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, v) = call(&app, "GET", &format!("/api/cases/{no}"), Some(ADMIN), None).await;
        assert_eq!(v["status"], "withdrawn", "{v}");
    }

    /// A grant with a position acts for its department where no role is
    /// asked (a supervision order's reply), and only as its position where
    /// one is.
    #[test]
    fn a_position_narrows_roles_but_not_the_department() {
        use govflow_engine::core::Actor;
        use govflow_engine::store::users::{Grant, User};
        let p = crate::auth::Principal::User(User {
            login: "li".into(),
            name: "李".into(),
            roles: vec![Grant {
                role: "clerk".into(),
                department: Some("dev".into()),
                position: Some("officer".into()),
            }],
            disabled: false,
        });
        let by = |role: Option<&str>| Actor {
            name: "x".into(),
            department: Some("dev".into()),
            role: role.map(str::to_string),
        };
        assert!(p.check_actor(&mut by(None)).is_ok());
        assert!(p.check_actor(&mut by(Some("officer"))).is_ok());
        assert!(p.check_actor(&mut by(Some("chief"))).is_err());
    }
    /// docs/engine.md has a row for every command kind and every write route.
    #[test]
    fn the_table_in_the_docs_has_every_command_and_write() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/engine.md"),
        )
        .unwrap_or_default();
        let Some(start) = doc.find("### Who may do what") else {
            panic!("docs/engine.md has no `### Who may do what` section");
        };
        let table = &doc[start..];
        let table = &table[..table[4..].find("\n#").map_or(table.len(), |i| i + 4)];
        for kind in govflow_engine::core::Command::KINDS {
            assert!(
                table.contains(&format!("| `{kind}` |")),
                "no row for the command `{kind}`"
            );
        }
        for r in crate::routes::table() {
            let m = r.info.method.as_str();
            if matches!(m, "post" | "put") {
                let row = format!("| `{} /api{}` |", m.to_uppercase(), r.info.path);
                assert!(table.contains(&row), "no row for {row}");
            }
        }
    }

    /// The rows of the route tables in docs/engine.md: (method, path, roles).
    fn documented_routes() -> Vec<(String, String, Vec<String>)> {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/engine.md"),
        )
        .unwrap_or_default();
        let start = doc.find("### Who may do what").unwrap_or(0);
        let section = &doc[start..];
        let section = &section[..section[4..].find("\n#").map_or(section.len(), |i| i + 4)];
        section
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let route = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let (method, path) = route.split_once(' ')?;
                let path = path.strip_prefix("/api")?;
                let roles = cells
                    .get(2)?
                    .split(',')
                    .map(|r| r.trim().to_string())
                    .collect();
                Some((method.to_string(), path.to_string(), roles))
            })
            .collect()
    }

    /// The authorisation matrix: every route of the API, called by every
    /// role (staff of two departments among them) and by no one, answers 401
    /// or 403 exactly where the tables in docs/engine.md say it does; then the
    /// case reads and each command kind, for the two departments.
    #[tokio::test]
    async fn every_route_and_command_answers_each_role_as_the_tables_say() {
        let (app, state) = app("matrix").await;
        let env = user(&state, "env_clerk", "clerk", Some("env")).await;
        let market = user(&state, "market_clerk", "clerk", Some("market")).await;
        let dev = user(&state, "dev_reviewer", "reviewer", Some("dev")).await;
        let analyst = user(&state, "analyst", "analyst", None).await;
        let deployer = user(&state, "deployer", "deployer", None).await;
        let supervisor = user(&state, "supervisor", "supervisor", None).await;
        let integration = user(&state, "payments", "integration", None).await;
        let _victim = user(&state, "victim", "analyst", None).await;
        let callers: Vec<(&str, Option<&str>, &[&str])> = vec![
            ("anonymous", None, &[]),
            ("admin", Some(ADMIN), &["admin"]),
            ("clerk@window", Some(CLERK), &["clerk", "staff"]),
            ("clerk@env", Some(&env), &["clerk", "staff"]),
            ("clerk@market", Some(&market), &["clerk", "staff"]),
            ("reviewer@dev", Some(&dev), &["reviewer", "staff"]),
            ("analyst", Some(&analyst), &["analyst"]),
            ("deployer", Some(&deployer), &["deployer"]),
            ("supervisor", Some(&supervisor), &["supervisor"]),
            ("integration", Some(&integration), &["integration"]),
        ];
        let start = json!({
            "flow": "parallel_approval",
            "applicant": {"name": "张三", "id_kind": "id_card", "id_number": "11010519491231002X",
                          "phone": "13812345678", "address": "浙江省杭州市西湖区文三路 1 号"},
            "materials": [{"id": "application"}, {"id": "project_doc"}],
        });
        let new_case = || async {
            let (s, v) = call(&app, "POST", "/api/cases", Some(CLERK), Some(start.clone())).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v["case_no"].as_str().unwrap().to_string()
        };
        let no = new_case().await;
        // 1. Every route × every caller, against the documented roles.
        let routes = documented_routes();
        let table = crate::routes::table();
        assert_eq!(
            routes.len(),
            table.len(),
            "docs/engine.md has a row for each route, no more"
        );
        for r in &table {
            let method = r.info.method.as_str().to_uppercase();
            let Some((_, _, roles)) = routes
                .iter()
                .find(|(m, p, _)| *m == method && *p == r.info.path)
            else {
                panic!("no row for {method} {}", r.info.path);
            };
            let path = r
                .info
                .path
                .replace("{no}", &no)
                .replace("{id}", "parallel_approval")
                .replace("{version}", "1")
                .replace("{file}", "timeliness.rules")
                .replace("{login}", "victim")
                .replace("{step}", "accept")
                .replace("{action}", "appeal");
            // Alarms and adjustments are numbered.
            let path =
                if path.starts_with("/alarms/") || path.starts_with("/efficiency/adjustments/") {
                    path.replace("parallel_approval", "999999")
                } else {
                    path
                };
            let path = if path.starts_with("/users/victim/tokens/") {
                path.replace("/tokens/parallel_approval", "/tokens/0000000000000000")
            } else {
                path
            };
            for (who, token, has) in &callers {
                // An empty body: a caller let through is refused for its body
                // (400/404/422), never for who they are.
                let body = (method != "GET").then(|| json!({}));
                let (s, v) = call(&app, &method, &format!("/api{path}"), *token, body).await;
                let allowed = roles.iter().any(|role| match role.as_str() {
                    "public" => true,
                    "any" => token.is_some(),
                    role => has.contains(&role) || has.contains(&"admin"),
                });
                // Refused for who they are: no login, or the route's roles
                // (a 403 for their place in a case comes later, in part 2).
                let denied = s == StatusCode::UNAUTHORIZED
                    || (s == StatusCode::FORBIDDEN
                        && v["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("needs the role")));
                assert_eq!(
                    !denied, allowed,
                    "{who} {method} /api{path}: {s} {v} (documented roles: {roles:?})"
                );
            }
        }
        // 2. Case reads: involved departments, supervisors, administrators
        // and integration read; others do not, and their lists leave it out.
        let reads = ["", "/events", "/exchange", "/rating"];
        for (who, token, may) in [
            ("clerk@window", CLERK, true),
            ("clerk@env", env.as_str(), true),
            ("reviewer@dev", dev.as_str(), true),
            ("supervisor", supervisor.as_str(), true),
            ("integration", integration.as_str(), true),
            ("clerk@market", market.as_str(), false),
            ("analyst", analyst.as_str(), false),
        ] {
            for r in reads {
                let (s, v) = call(
                    &app,
                    "GET",
                    &format!("/api/cases/{no}{r}"),
                    Some(token),
                    None,
                )
                .await;
                if may {
                    assert_eq!(s, StatusCode::OK, "{who} {r}: {v}");
                    assert!(
                        !v.to_string().contains("11010519491231002X"),
                        "{who} {r}: unmasked {v}"
                    );
                    assert!(
                        !v.to_string().contains("13812345678"),
                        "{who} {r}: unmasked {v}"
                    );
                } else {
                    assert_eq!(
                        (s, v["code"].as_str()),
                        (StatusCode::FORBIDDEN, Some("auth.not_involved")),
                        "{who} {r}: {v}"
                    );
                }
            }
            let (s, v) = call(&app, "GET", "/api/cases", Some(token), None).await;
            assert_eq!(s, StatusCode::OK);
            let listed = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["case_no"] == no.as_str());
            assert_eq!(listed, may, "{who}: list {v}");
        }
        let (_, v) = call(&app, "GET", &format!("/api/cases/{no}"), Some(CLERK), None).await;
        assert_eq!(v["applicant"]["id_number"], "110***********002X");
        assert_eq!(v["applicant"]["phone"], "138****5678");
        assert_eq!(v["applicant"]["address"], "浙江省杭州市****");
        // Reveal: the window's clerk and supervisors, with a reason; audited.
        let reason = json!({"reason": "窗口核对申请人身份证件"});
        for (who, token, status) in [
            ("clerk@window", CLERK, StatusCode::OK),
            ("supervisor", supervisor.as_str(), StatusCode::OK),
            ("reviewer@dev", dev.as_str(), StatusCode::FORBIDDEN),
            ("clerk@market", market.as_str(), StatusCode::FORBIDDEN),
        ] {
            let (s, v) = call(
                &app,
                "POST",
                &format!("/api/cases/{no}/reveal"),
                Some(token),
                Some(reason.clone()),
            )
            .await;
            assert_eq!(s, status, "{who}: {v}");
            if s == StatusCode::OK {
                assert_eq!(v["applicant"]["id_number"], "11010519491231002X");
            }
        }
        let (s, v) = call(
            &app,
            "POST",
            &format!("/api/cases/{no}/reveal"),
            Some(CLERK),
            Some(json!({"reason": "x"})),
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("reveal.reason"))
        );
        let (_, v) = call(
            &app,
            "GET",
            "/api/audit?action=reveal_personal_data",
            Some(ADMIN),
            None,
        )
        .await;
        let rows = v["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(rows.len(), 2, "{v}");
        assert!(
            rows.iter()
                .any(|r| r["actor"] == "clerk" && r["detail"].to_string().contains("窗口核对")),
            "{v}"
        );
        // 3. Each command kind, sent by staff of two departments (the
        // window, and env, which the flow also declares), each on a fresh case.
        let window_by = json!({"name": "王芳", "department": "window", "role": "clerk"});
        let env_by = json!({"name": "env_clerk", "department": "env"});
        let ok = |s: StatusCode| s != StatusCode::FORBIDDEN && s != StatusCode::UNAUTHORIZED;
        for kind in govflow_engine::core::Command::KINDS {
            let body = |by: &Value| match *kind {
                "start" => None,
                "submit_materials" => {
                    Some(json!({"command": kind, "materials": [{"id": "land_doc"}]}))
                }
                "complete" => Some(json!({"command": kind, "step": "accept", "by": by})),
                "start_special" => Some(
                    json!({"command": kind, "step": "accept", "kind": "hearing", "reason": "r", "by": by}),
                ),
                "end_special" => Some(
                    json!({"command": kind, "step": "accept", "kind": "hearing", "result": "r", "by": by}),
                ),
                "signal" => Some(json!({"command": kind, "name": "paid"})),
                "subcase_finished" => Some(
                    json!({"command": kind, "step": "s", "item": "i", "case_no": "x", "result": "ok"}),
                ),
                "terminate" => Some(json!({"command": kind, "reason": "r", "by": by})),
                "withdraw" => Some(json!({"command": kind, "reason": "r"})),
                _ => Some(json!({"command": kind})),
            };
            // (window may, env may); None: engine-only, a 400 for everyone.
            let expected: Option<(bool, bool)> = match *kind {
                "start" => Some((true, true)),
                "submit_materials" | "signal" | "terminate" | "withdraw" => Some((true, false)),
                "complete" | "start_special" | "end_special" => Some((true, true)),
                "subcase_finished" => Some((false, false)),
                _ => None,
            };
            for (dept, token, by) in [
                ("window", CLERK, &window_by),
                ("env", env.as_str(), &env_by),
            ] {
                let (s, v) = match body(by) {
                    None => {
                        call(&app, "POST", "/api/cases", Some(token), Some(start.clone())).await
                    }
                    Some(b) => {
                        let no = new_case().await;
                        call(
                            &app,
                            "POST",
                            &format!("/api/cases/{no}/commands"),
                            Some(token),
                            Some(b),
                        )
                        .await
                    }
                };
                match expected {
                    None => assert_eq!(s, StatusCode::BAD_REQUEST, "{kind} by {dept}: {v}"),
                    Some((w, e)) => {
                        let may = if dept == "window" { w } else { e };
                        assert_eq!(ok(s), may, "{kind} by {dept}: {s} {v}");
                    }
                }
            }
        }
    }
}
