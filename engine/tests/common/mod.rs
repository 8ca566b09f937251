//! What the engine's integration tests share: an applicant, an actor, a
//! plain completion, a request.
#![allow(dead_code)]

use govflow_engine::core::ids::IdKind;
use govflow_engine::core::{Actor, Command, MaterialIn, Person};
use govflow_engine::store::Request;

/// A company applicant with a valid 统一社会信用代码.
pub fn applicant() -> Person {
    Person {
        name: "杭州示例科技有限公司".into(),
        id_kind: IdKind::CreditCode,
        id_number: "91110000600037341L".into(),
        legacy: false,
        phone: None,
        address: None,
        postcode: None,
        legal_representative: None,
    }
}

pub fn actor(dept: &str, role: Option<&str>) -> Actor {
    Actor {
        name: "办事员".into(),
        department: Some(dept.into()),
        role: role.map(str::to_string),
    }
}

/// `complete STEP` with `pass`, by someone of `dept` (and `role`).
pub fn complete(step: &str, dept: &str, role: Option<&str>) -> Command {
    Command::Complete {
        step: step.into(),
        action: "pass".into(),
        by: actor(dept, role),
        opinion: None,
        data: Default::default(),
        missing: vec![],
        defer: vec![],
        defer_within: None,
        fixes: Default::default(),
        document_no: None,
        on_site: None,
    }
}

/// `start` with these materials (uploaded) and no data.
pub fn start(materials: &[&str]) -> Command {
    Command::Start {
        case_no: String::new(),
        applicant: applicant(),
        agent: None,
        source: None,
        project_code: None,
        data: Default::default(),
        materials: materials
            .iter()
            .map(|m| MaterialIn {
                id: (*m).into(),
                how: "upload".into(),
                count: 1,
            })
            .collect(),
    }
}

pub fn req(case: Option<&str>, flow: Option<&str>, command: Command) -> Request {
    Request {
        case_no: case.map(str::to_string),
        flow_id: flow.map(str::to_string),
        command,
        idempotency_key: None,
        actor: "test".into(),
        override_claims: false,
    }
}
