//! The six exchange record types (办件信息) of the 2016 guideline, derived
//! from a case's event log: 申请信息, 申请材料信息, 受理信息, 办理环节信息,
//! 特别程序信息, 办结信息. Field names are the standard's; times are
//! `yyyy-mm-dd hh24:mi:ss` with their offset (`+08:00`), dates `yyyy-mm-dd`.

use crate::core::{Actor, Deadline, Event, SpecialClass, Time};
use govflow_dsl::Flow;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A time of the standard's `yyyy-mm-dd hh24:mi:ss` with its offset, so that
/// no receiving system takes China Standard Time for UTC.
fn ts(t: Time) -> String {
    t.format("%Y-%m-%d %H:%M:%S+08:00").to_string()
}

fn day(t: Time) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The actor's department by its display name when the flow knows it.
fn dept(a: &Actor, flow: Option<&Flow>) -> Value {
    match (&a.department, flow) {
        (Some(id), Some(f)) => Value::String(
            f.departments
                .iter()
                .find(|d| &d.id == id)
                .map_or(id.clone(), |d| d.name.clone()),
        ),
        (Some(id), None) => Value::String(id.clone()),
        (None, _) => Value::Null,
    }
}

fn how(h: &str) -> &str {
    match h {
        "paper" => "纸质收取",
        "upload" => "附件上传",
        "library" => "证照库",
        other => other,
    }
}

/// The exchange records of one case. `flow` (the version the case ran on)
/// supplies material and step names and lists materials never received.
pub fn exchange_records(events: &[Event], flow: Option<&Flow>) -> Value {
    let mut case_no = String::new();
    let mut application = Value::Null;
    let mut received: BTreeMap<String, (String, u32, Time)> = BTreeMap::new();
    let mut acceptance = Value::Null;
    let mut opened: BTreeMap<u32, (String, Time)> = BTreeMap::new();
    let mut steps = Vec::new();
    let mut specials: Vec<Value> = Vec::new();
    let mut special_ids: BTreeMap<u32, usize> = BTreeMap::new();
    let mut completion = Value::Null;
    // The statutory and promised deadlines as they stand (extension fields of
    // the acceptance record: a provisional one says so).
    let mut clocks: (Option<Deadline>, Option<Deadline>) = (None, None);
    for e in events {
        match e {
            Event::CaseStarted {
                at,
                case_no: no,
                item_name,
                item_code,
                case_kind,
                applicant,
                agent,
                source,
                project_code,
                ..
            } => {
                case_no = no.clone();
                let contact = agent.as_ref().unwrap_or(applicant);
                application = json!({
                    "办件编号": no,
                    "事项编码": item_code,
                    "事项名称": item_name,
                    "办件类型": case_kind,
                    "申请人名称": applicant.name,
                    "申请人证件类型": applicant.id_kind.label(),
                    "申请人证件号码": applicant.id_number,
                    "联系人/代理人姓名": contact.name,
                    "联系人/代理人证件类型": contact.id_kind.label(),
                    "联系人/代理人证件号码": contact.id_number,
                    "联系人联系电话": contact.phone,
                    "邮编": applicant.postcode,
                    "通信地址": applicant.address,
                    "法定代表人": applicant.legal_representative,
                    "申请来源": source,
                    "申请时间": ts(*at),
                    "项目编号": project_code,
                });
            }
            Event::MaterialsReceived { at, materials } => {
                for m in materials {
                    received.insert(m.id.clone(), (m.how.clone(), m.count, *at));
                }
            }
            Event::Accepted {
                at,
                by,
                notice_no,
                statutory: st,
                promised: pr,
                ..
            } => {
                acceptance = json!({
                    "办件编号": case_no,
                    "政务服务人员所在部门": dept(by, flow),
                    "政务服务人员": by.name,
                    "受理时间": ts(*at),
                    "受理文书编号": notice_no,
                });
                clocks = (st.clone(), pr.clone());
            }
            Event::DeadlinesMoved {
                statutory: st,
                promised: pr,
                ..
            } => clocks = (st.clone(), pr.clone()),
            Event::DeadlinesRecomputed { changes, .. } => {
                for c in changes {
                    match c.key.as_str() {
                        "case:statutory" => clocks.0 = Some(c.deadline.clone()),
                        "case:promised" => clocks.1 = Some(c.deadline.clone()),
                        _ => {}
                    }
                }
            }
            Event::TaskOpened { at, task } => {
                opened.insert(task.id, (task.name.clone(), *at));
            }
            Event::TaskCompleted {
                at,
                task,
                step,
                action,
                by,
                opinion,
                next,
            } => {
                let (name, started) = opened
                    .get(task)
                    .cloned()
                    .unwrap_or_else(|| (step.clone(), *at));
                let act = match action.as_str() {
                    "pass" => "通过",
                    "return" => "退回",
                    _ => "其他",
                };
                steps.push(json!({
                    "办件编号": case_no,
                    "业务动作": act,
                    "办理环节名称": name,
                    "下一环节名称": next,
                    "审批人姓名": by.name,
                    "审批意见": opinion,
                    "环节开始时间": ts(started),
                    "环节结束时间": ts(*at),
                    "备注": if act == "其他" { Value::String(action.clone()) } else { Value::Null },
                }));
            }
            Event::SpecialStarted { special, .. } => {
                special_ids.insert(special.id, specials.len());
                specials.push(json!({
                    "办件编号": case_no,
                    "特别程序种类": match special.class { SpecialClass::A => "A", SpecialClass::B => "B" },
                    "特别程序种类名称": special.kind,
                    "特别程序开始日期": day(special.started_at),
                    "特别程序启动理由或依据": special.reason,
                    "申请人": special.requested_by.name,
                    "特别程序结束日期": Value::Null,
                    "特别程序结果": Value::Null,
                    "特别程序办理意见": Value::Null,
                    "办理人": Value::Null,
                }));
            }
            Event::SpecialEnded {
                at,
                id,
                result,
                opinion,
                by,
                ..
            } => {
                if let Some(v) = special_ids.get(id).and_then(|i| specials.get_mut(*i)) {
                    v["特别程序结束日期"] = day(*at).into();
                    v["特别程序结果"] = result.clone().into();
                    v["特别程序办理意见"] = opinion.clone().map_or(Value::Null, Value::String);
                    v["办理人"] = by.name.clone().into();
                }
            }
            Event::Completed {
                at,
                result,
                document_no,
                by,
                end,
            } => {
                completion = json!({
                    "办件编号": case_no,
                    "办理人员姓名": by.as_ref().map(|b| b.name.clone()),
                    "办结日期": day(*at),
                    "办理结果": result,
                    "结果证照编号": document_no,
                    "办件结果电子文书": Value::Null,
                    "办件结果描述": flow
                        .and_then(|f| f.ends.get(end))
                        .map_or(end.clone(), |e| e.name.clone()),
                    "结果时效": Value::Null,
                    "备注": Value::Null,
                });
            }
            Event::Terminated { at, reason, by } => {
                completion = json!({
                    "办件编号": case_no,
                    "办理人员姓名": by.name,
                    "办结日期": day(*at),
                    "办理结果": "中止",
                    "结果证照编号": Value::Null,
                    "办件结果电子文书": Value::Null,
                    "办件结果描述": reason,
                    "结果时效": Value::Null,
                    "备注": "中止办理",
                });
            }
            Event::Withdrawn { at, reason } => {
                completion = json!({
                    "办件编号": case_no,
                    "办理人员姓名": Value::Null,
                    "办结日期": day(*at),
                    "办理结果": "撤回",
                    "结果证照编号": Value::Null,
                    "办件结果电子文书": Value::Null,
                    "办件结果描述": reason,
                    "结果时效": Value::Null,
                    "备注": "申请人撤回",
                });
            }
            _ => {}
        }
    }
    let mut materials = Vec::new();
    let names: Vec<(String, String)> = match flow {
        Some(f) => f
            .materials
            .iter()
            .map(|m| (m.id.clone(), m.name.clone()))
            .collect(),
        None => received.keys().map(|k| (k.clone(), k.clone())).collect(),
    };
    for (id, name) in names {
        let row = match received.get(&id) {
            Some((h, count, at)) => json!({
                "办件编号": case_no, "材料名称": name, "是否已收取": "1", "收取方式": how(h),
                "收取数量": count, "收取时间": ts(*at), "附件实体": Value::Null, "备注": Value::Null,
            }),
            None => json!({
                "办件编号": case_no, "材料名称": name, "是否已收取": "0", "收取方式": Value::Null,
                "收取数量": 0, "收取时间": Value::Null, "附件实体": Value::Null, "备注": Value::Null,
            }),
        };
        materials.push(row);
    }
    if let Some(a) = acceptance.as_object_mut() {
        // Beyond the standard's five fields: the deadlines in force, and
        // whether they were computed with the provisional calendar rule.
        for (name, d) in [("法定办结日期", &clocks.0), ("承诺办结日期", &clocks.1)] {
            if let Some(d) = d {
                a.insert(name.into(), json!(d.due_date.map(|x| x.to_string())));
                if d.provisional {
                    a.insert(format!("{name}为临时计算"), json!("是"));
                }
            }
        }
    }
    json!({
        "申请信息": application,
        "申请材料信息": materials,
        "受理信息": acceptance,
        "办理环节信息": steps,
        "特别程序信息": specials,
        "办结信息": completion,
    })
}
