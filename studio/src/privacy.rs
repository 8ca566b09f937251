//! Who may read a case, and what of the applicant they see.
//!
//! A case is read by the departments involved in it — those its flow declares
//! (a department chosen per case, like a supervision order's addressee, is the
//! one the case's data names), those holding one of its tasks, and the one that
//! accepted it — and by supervisors, integration accounts and administrators.
//! Lists are filtered the same way (`CaseScope`). Everyone else gets 403
//! `auth.not_involved`.
//!
//! Personal data — ID numbers, phone numbers, addresses — is masked in every
//! case read (`330***********1234`). Those who need it — administrators,
//! supervisors, integration accounts and clerks of the case's window — ask for
//! it with a reason (`POST /cases/{no}/reveal`); each reveal is an audit row.

use crate::auth::Principal;
use crate::error::ApiError;
use axum::http::StatusCode;
use govflow_engine::core::{CaseState, CompiledFlow};
use govflow_engine::store::CaseScope;
use serde_json::Value;

/// Roles that read every case (masked).
fn reads_all(p: &Principal) -> bool {
    p.has_role("admin") || p.has_role("supervisor") || p.has_role("integration")
}

/// The departments involved in a case.
pub(crate) fn involved(case: &CaseState, flow: Option<&CompiledFlow>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(f) = flow {
        for d in &f.flow.departments {
            match &d.from {
                None => out.push(d.id.clone()),
                Some(field) => {
                    if let Some(name) = case.data.get(field).and_then(|v| v.as_str()) {
                        out.push(name.to_string());
                    }
                }
            }
        }
    }
    out.extend(case.tasks.values().map(|t| t.department.clone()));
    out.extend(case.accepted_by.as_ref().and_then(|a| a.department.clone()));
    out.sort();
    out.dedup();
    out
}

/// Which cases the caller's lists show; `None`: every case.
pub(crate) fn scope(
    p: &Principal,
    flows: &govflow_engine::app::registry::Registry,
) -> Option<CaseScope> {
    if reads_all(p) {
        return None;
    }
    let mine = p.departments().unwrap_or_default();
    let flows = flows
        .all_latest()
        .iter()
        .filter(|f| {
            f.flow
                .departments
                .iter()
                .any(|d| d.from.is_none() && mine.contains(&d.id))
        })
        .map(|f| f.flow.id.clone())
        .collect();
    Some(CaseScope {
        flows,
        departments: mine,
    })
}

/// The caller may read this case.
pub(crate) fn check_read(
    p: &Principal,
    case: &CaseState,
    flow: Option<&CompiledFlow>,
) -> Result<(), ApiError> {
    if reads_all(p) {
        return Ok(());
    }
    let mine = p.departments().unwrap_or_default();
    if involved(case, flow).iter().any(|d| mine.contains(d)) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "auth.not_involved",
        format!(
            "{0} 所在部门未参与办件 {1}，不能查看 / {0}: no department of yours takes part in case {1}",
            p.login(),
            case.case_no
        ),
    ))
}

/// The caller may see the applicant's personal data unmasked (with a reason).
pub(crate) fn check_reveal(p: &Principal, case: &CaseState) -> Result<(), ApiError> {
    if reads_all(p) {
        return Ok(());
    }
    let window = case
        .accepted_by
        .as_ref()
        .and_then(|a| a.department.clone())
        .into_iter()
        .chain(
            case.accepted_by
                .is_none()
                .then(|| case.tasks.values().map(|t| t.department.clone()))
                .into_iter()
                .flatten(),
        )
        .collect::<Vec<_>>();
    let clerk_of_window = match p {
        Principal::User(u) => u.roles.iter().any(|g| {
            g.role == "clerk" && g.department.as_ref().is_some_and(|d| window.contains(d))
        }),
        Principal::Admin => true,
    };
    if clerk_of_window {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "auth.forbidden",
        format!(
            "{0} 不能查看申请人的完整个人信息（窗口收件人员、监察人员可以）/ {0} may not see the applicant's personal data: the window's clerks and supervisors may",
            p.login()
        ),
    ))
}

/// The fields that hold personal data, as case reads, events and exchange
/// records name them.
const ID_KEYS: &[&str] = &["id_number", "申请人证件号码", "联系人/代理人证件号码"];
const PHONE_KEYS: &[&str] = &["phone", "联系人联系电话"];
const ADDRESS_KEYS: &[&str] = &["address", "通信地址"];

/// `330***********1234`: the first three and last four characters stay.
pub(crate) fn mask_id(s: &str) -> String {
    keep_ends(s, 3, 4)
}

/// `138****5678`.
pub(crate) fn mask_phone(s: &str) -> String {
    keep_ends(s, 3, 4)
}

/// The first six characters, then `****`.
pub(crate) fn mask_address(s: &str) -> String {
    let head: String = s.chars().take(6).collect();
    if head.chars().count() == s.chars().count() && s.chars().count() <= 6 {
        return "*".repeat(s.chars().count());
    }
    format!("{head}****")
}

fn keep_ends(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&"*".repeat(chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// Masks every personal field anywhere in `v`.
pub(crate) fn mask(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if let Value::String(s) = x {
                    if ID_KEYS.contains(&k.as_str()) {
                        *s = mask_id(s);
                    } else if PHONE_KEYS.contains(&k.as_str()) {
                        *s = mask_phone(s);
                    } else if ADDRESS_KEYS.contains(&k.as_str()) {
                        *s = mask_address(s);
                    }
                } else {
                    mask(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_keep_only_the_ends() {
        assert_eq!(mask_id("330102199001011234"), "330***********1234");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(
            mask_address("浙江省杭州市西湖区文三路 1 号"),
            "浙江省杭州市****"
        );
        assert_eq!(mask_id("1234567"), "*******");
        let mut v = json!({"applicant": {"name": "张三", "id_number": "330102199001011234",
            "phone": "13812345678"}, "events": [{"联系人联系电话": "13812345678"}]});
        mask(&mut v);
        assert_eq!(v["applicant"]["name"], "张三");
        assert_eq!(v["applicant"]["id_number"], "330***********1234");
        assert_eq!(v["events"][0]["联系人联系电话"], "138****5678");
    }
}
