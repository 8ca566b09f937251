//! The wire types of the HTTP API: every request body, written once. Each
//! derives `Deserialize` (what the handler reads) and utoipa's `ToSchema`
//! (what `GET /api/openapi.json` says), so the document cannot drift from
//! the code. The route table names each route's body (`Route::body`).
//!
//! These are the API's own types, not the engine's: a body converts into an
//! engine command or value (`From` impls below), so the engine's serde
//! shapes can change without changing the API.

use govflow_engine::core::{Command, Data, Period};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema};

/// A body's schema: it adds the schemas it refers to, and returns a
/// reference to its own (by name, among the document's components).
pub(crate) type BodySchema = fn(&mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema>;

/// The [`BodySchema`] of `T`.
pub(crate) fn schema_of<T: ToSchema>(
    components: &mut Vec<(String, RefOr<Schema>)>,
) -> RefOr<Schema> {
    T::schemas(components);
    let name = T::name().to_string();
    components.push((name.clone(), T::schema()));
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
}

fn pass() -> String {
    "pass".into()
}

/// Who acts: a member of staff of a department (and role).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Actor {
    pub(crate) name: String,
    /// A department id of the flow.
    #[serde(default)]
    pub(crate) department: Option<String>,
    /// A role of the flow (`clerk` of `window`, say).
    #[serde(default)]
    pub(crate) role: Option<String>,
}

impl From<Actor> for govflow_engine::core::Actor {
    fn from(a: Actor) -> Self {
        govflow_engine::core::Actor {
            name: a.name,
            department: a.department,
            role: a.role,
        }
    }
}

/// The kinds of applicant identifiers.
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IdKind {
    /// 居民身份证 (a natural person).
    IdCard,
    /// 统一社会信用代码 (a legal person or another organisation).
    CreditCode,
}

/// An applicant, agent or complainant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Person {
    pub(crate) name: String,
    pub(crate) id_kind: IdKind,
    pub(crate) id_number: String,
    /// Accept a 统一社会信用代码 whose check character is wrong: a known legacy code.
    #[serde(default)]
    pub(crate) legacy: bool,
    #[serde(default)]
    pub(crate) phone: Option<String>,
    #[serde(default)]
    pub(crate) address: Option<String>,
    #[serde(default)]
    pub(crate) postcode: Option<String>,
    /// 法定代表人, for a legal person.
    #[serde(default)]
    pub(crate) legal_representative: Option<String>,
}

impl From<Person> for govflow_engine::core::Person {
    fn from(p: Person) -> Self {
        use govflow_engine::core::ids::IdKind as K;
        govflow_engine::core::Person {
            name: p.name,
            id_kind: match p.id_kind {
                IdKind::IdCard => K::IdCard,
                IdKind::CreditCode => K::CreditCode,
            },
            id_number: p.id_number,
            legacy: p.legacy,
            phone: p.phone,
            address: p.address,
            postcode: p.postcode,
            legal_representative: p.legal_representative,
        }
    }
}

/// A material handed in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Material {
    /// The material's id in the flow.
    pub(crate) id: String,
    /// 收取方式: `paper` 纸质收取, `upload` 附件上传 (default), `library` 证照库.
    #[serde(default = "upload")]
    #[schema(default = "upload")]
    pub(crate) how: String,
    /// How many copies (1 by default).
    #[serde(default = "one", deserialize_with = "whole::u32")]
    #[schema(default = 1)]
    pub(crate) count: u32,
}

/// Integer fields read the way JSON Schema counts integers: `3` and `3.0`
/// alike (a client that sends every number as a float is not wrong), but not
/// `3.5`.
mod whole {
    use serde::{Deserialize, Deserializer, de::Error};

    fn whole<E: Error>(n: &serde_json::Number, lo: f64, hi: f64) -> Result<i64, E> {
        if let Some(i) = n.as_i64() {
            return Ok(i);
        }
        match n.as_f64() {
            Some(f) if f.fract() == 0.0 && (lo..=hi).contains(&f) => Ok(f as i64),
            _ => Err(E::custom(format!("{n} is not a whole number in range"))),
        }
    }

    pub(crate) fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        let i = whole::<D::Error>(&n, 0.0, f64::from(u32::MAX))?;
        u32::try_from(i).map_err(|_| D::Error::custom(format!("{n} is out of range")))
    }

    pub(crate) fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match Option::<serde_json::Number>::deserialize(d)? {
            None => Ok(None),
            Some(n) => {
                let i = whole::<D::Error>(&n, 0.0, f64::from(u32::MAX))?;
                u32::try_from(i)
                    .map(Some)
                    .map_err(|_| D::Error::custom(format!("{n} is out of range")))
            }
        }
    }

    pub(crate) fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        whole::<D::Error>(&n, -9.0e15, 9.0e15)
    }
}

fn upload() -> String {
    "upload".into()
}
fn one() -> u32 {
    1
}

impl From<Material> for govflow_engine::core::MaterialIn {
    fn from(m: Material) -> Self {
        govflow_engine::core::MaterialIn {
            id: m.id,
            how: m.how,
            count: m.count,
        }
    }
}

fn materials(ms: Vec<Material>) -> Vec<govflow_engine::core::MaterialIn> {
    ms.into_iter().map(Into::into).collect()
}

/// A role granted to a user, in a department (and position).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Grant {
    #[schema(value_type = RoleName)]
    pub(crate) role: String,
    #[serde(default)]
    pub(crate) department: Option<String>,
    /// One of the flow's roles (`clerk` of `window`), narrowing the grant.
    #[serde(default)]
    pub(crate) position: Option<String>,
}

impl From<Grant> for govflow_engine::store::users::Grant {
    fn from(g: Grant) -> Self {
        govflow_engine::store::users::Grant {
            role: g.role,
            department: g.department,
            position: g.position,
        }
    }
}

/// The names a few string fields take (for the document only: the handler
/// reads the string and explains a wrong one in its own words).
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum SyntaxName {
    Dsl,
    Yaml,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum KindName {
    Flow,
    Rules,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum UnitName {
    Workdays,
    Days,
    Hours,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum OutcomeName {
    Revoke,
    Reject,
    Escalate,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum RoleName {
    Admin,
    Analyst,
    Deployer,
    Clerk,
    Reviewer,
    Supervisor,
    Integration,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub(crate) login: String,
    /// Not blank.
    #[schema(pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub(crate) name: String,
    pub(crate) roles: Vec<Grant>,
    /// For logging in to the studio (at least 10 characters); stored as an argon2id hash.
    #[serde(default)]
    #[schema(min_length = 10, max_length = 1024)]
    pub(crate) password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    #[serde(default)]
    pub(crate) label: Option<String>,
    /// How long the token lives: 1 to 365 days, 90 by default.
    #[serde(default, deserialize_with = "whole::opt_u32")]
    #[schema(minimum = 1, maximum = 365)]
    pub(crate) expires_days: Option<u32>,
}

/// `PUT /users/{login}/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordBody {
    #[schema(min_length = 10, max_length = 1024)]
    pub(crate) password: String,
}

/// `PUT /users/{login}/roles`: the user's roles, all of them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolesBody {
    pub(crate) roles: Vec<Grant>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    /// 1–64 characters, no control characters.
    #[schema(pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,64}$")]
    pub(crate) login: String,
    /// At most 1,024 characters.
    #[schema(max_length = 1024)]
    pub(crate) password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct YearBody {
    /// The file's text: the holiday-cn JSON format or the plain-text format.
    pub(crate) text: String,
    /// `CN` (default) or a 6-digit division code for a region's own days.
    #[serde(default)]
    pub(crate) region: Option<String>,
    /// The uploaded file's name, for the record.
    #[serde(default)]
    pub(crate) file: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartBody {
    pub(crate) flow: String,
    pub(crate) applicant: Person,
    #[serde(default)]
    pub(crate) agent: Option<Person>,
    #[serde(default)]
    pub(crate) source: Option<String>,
    #[serde(default)]
    pub(crate) project_code: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) data: Data,
    #[serde(default)]
    pub(crate) materials: Vec<Material>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteBody {
    /// The action of the step to take (`pass` by default).
    #[serde(default = "pass")]
    #[schema(default = "pass")]
    pub(crate) action: String,
    pub(crate) by: Actor,
    #[serde(default)]
    pub(crate) opinion: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) data: Data,
    #[serde(default)]
    pub(crate) missing: Vec<String>,
    #[serde(default)]
    pub(crate) defer: Vec<String>,
    /// How long deferred materials may take, e.g. `5 workdays`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[0-9]{1,4} ?(workdays?|days?|hours?|工作日|个工作日|天|小时)$")]
    pub(crate) defer_within: Option<Period>,
    #[serde(default)]
    pub(crate) document_no: Option<String>,
    /// The applicant was there (到现场): by default yes the first time a
    /// visit step completes.
    #[serde(default)]
    pub(crate) on_site: Option<bool>,
    /// For `correct`: what to fix, by material (required for a material
    /// already received).
    #[serde(default)]
    pub(crate) fixes: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateBody {
    pub(crate) source: String,
    #[serde(default)]
    #[schema(value_type = Option<SyntaxName>)]
    pub(crate) syntax: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// `flow` (default) or `rules`.
    #[serde(default)]
    #[schema(value_type = Option<KindName>)]
    pub(crate) kind: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackBody {
    /// The text of `pack.yaml`.
    pub(crate) manifest: String,
    /// File name → text, for every file the manifest lists.
    pub(crate) files: BTreeMap<String, String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdjustBody {
    pub(crate) by: Actor,
    pub(crate) department: String,
    /// The month, `YYYY-MM`.
    #[schema(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub(crate) period: String,
    pub(crate) delta: f64,
    pub(crate) reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdjustmentAction {
    pub(crate) by: Actor,
    /// appeal: the reason; decide: the opinion.
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// decide only: `uphold` or `withdraw`.
    #[serde(default)]
    pub(crate) outcome: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimersBody {
    pub(crate) source: String,
    #[serde(default)]
    #[schema(value_type = Option<SyntaxName>)]
    pub(crate) syntax: Option<String>,
    /// Rewrite one deadline: its key, the new value and unit.
    #[serde(default)]
    pub(crate) set: Option<SetTimer>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetTimer {
    pub(crate) key: String,
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(deserialize_with = "whole::u32")]
    pub(crate) value: u32,
    #[schema(value_type = UnitName)]
    pub(crate) unit: govflow_dsl::ir::Unit,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceBody {
    pub(crate) source: String,
    #[serde(default)]
    #[schema(value_type = Option<SyntaxName>)]
    pub(crate) syntax: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TryBody {
    /// A rule file's text (the editor's); its rules are evaluated.
    pub(crate) source: String,
    #[serde(default)]
    #[schema(value_type = Option<SyntaxName>)]
    pub(crate) syntax: Option<String>,
    /// The case to evaluate them on.
    pub(crate) case: String,
    /// The instant (`YYYY-MM-DDTHH:MM[:SS]`, China time); now when left out or empty.
    #[serde(default)]
    #[schema(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?)?$")]
    pub(crate) at: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ByBody {
    pub(crate) by: Actor,
    #[serde(default)]
    pub(crate) note: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppealBody {
    pub(crate) by: Actor,
    pub(crate) reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecideBody {
    pub(crate) by: Actor,
    /// `revoke` (撤销), `reject` (打回), `escalate` (上报).
    #[schema(value_type = OutcomeName)]
    pub(crate) outcome: String,
    #[serde(default)]
    pub(crate) opinion: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseBody {
    pub(crate) by: Actor,
    pub(crate) opinion: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderBody {
    pub(crate) by: Actor,
    /// The department addressed; the card's department when left out.
    #[serde(default)]
    pub(crate) to: Option<String>,
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplyBody {
    pub(crate) by: Actor,
    pub(crate) reply: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComplaintBody {
    pub(crate) complainant: Person,
    /// The department complained about.
    pub(crate) addressee: String,
    /// The case complained about, if any.
    #[serde(default)]
    pub(crate) case: Option<String>,
    /// The member of staff complained about, if named.
    #[serde(default)]
    pub(crate) staff: Option<String>,
    pub(crate) content: String,
    #[serde(default)]
    pub(crate) source: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateBody {
    /// The rating account (the applicant's login on the portal).
    pub(crate) account: String,
    /// 5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意.
    #[schema(minimum = 1, maximum = 5)]
    #[serde(deserialize_with = "whole::i64")]
    pub(crate) score: i64,
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// `POST /cases/{no}/special/start`: a special procedure (特别程序) begins.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpecialStartBody {
    pub(crate) step: String,
    /// The kind of procedure (听证, 检验检测, 专家评审 …), as the flow names it.
    pub(crate) kind: String,
    pub(crate) reason: String,
    /// Its time limit in days, where the flow leaves it open.
    #[serde(default, deserialize_with = "whole::opt_u32")]
    pub(crate) days: Option<u32>,
    pub(crate) by: Actor,
    /// The written notice to the applicant (行政许可法第四十五条), required
    /// when the procedure stops the statutory clock.
    #[serde(default)]
    pub(crate) notice: Option<String>,
}

impl From<SpecialStartBody> for Command {
    fn from(b: SpecialStartBody) -> Command {
        Command::StartSpecial {
            step: b.step,
            kind: b.kind,
            reason: b.reason,
            days: b.days,
            by: b.by.into(),
            notice: b.notice,
        }
    }
}

/// `POST /cases/{no}/special/end`: a special procedure ends.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpecialEndBody {
    pub(crate) step: String,
    pub(crate) kind: String,
    pub(crate) result: String,
    #[serde(default)]
    pub(crate) opinion: Option<String>,
    #[serde(default)]
    pub(crate) approved: Option<bool>,
    pub(crate) by: Actor,
}

impl From<SpecialEndBody> for Command {
    fn from(b: SpecialEndBody) -> Command {
        Command::EndSpecial {
            step: b.step,
            kind: b.kind,
            result: b.result,
            opinion: b.opinion,
            approved: b.approved,
            by: b.by.into(),
        }
    }
}

/// `POST /cases/{no}/materials`: the applicant supplies materials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaterialsBody {
    #[serde(default)]
    pub(crate) materials: Vec<Material>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) data: Data,
    /// The applicant brought them to the window (their own choice, unless
    /// the item's corrections need them on site).
    #[serde(default)]
    pub(crate) on_site: bool,
}

impl From<MaterialsBody> for Command {
    fn from(b: MaterialsBody) -> Command {
        Command::SubmitMaterials {
            materials: materials(b.materials),
            data: b.data,
            on_site: b.on_site,
        }
    }
}

/// `POST /cases/{no}/terminate`: the case is terminated (中止).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TerminateBody {
    pub(crate) reason: String,
    pub(crate) by: Actor,
}

impl From<TerminateBody> for Command {
    fn from(b: TerminateBody) -> Command {
        Command::Terminate {
            reason: b.reason,
            by: b.by.into(),
        }
    }
}

/// `POST /cases/{no}/reveal`: why the caller needs the applicant's personal data.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevealBody {
    /// 2 to 200 characters; kept in the audit log.
    #[schema(min_length = 2, max_length = 200)]
    pub(crate) reason: String,
}

/// `POST /cases/{no}/withdraw`: the applicant withdraws (撤回).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WithdrawBody {
    pub(crate) reason: String,
}

impl From<WithdrawBody> for Command {
    fn from(b: WithdrawBody) -> Command {
        Command::Withdraw { reason: b.reason }
    }
}

/// A signal the flow waits for (a payment confirmed, say).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignalBody {
    pub(crate) name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) data: Data,
}

/// An item case a stage handed off has finished.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubcaseFinishedBody {
    pub(crate) step: String,
    pub(crate) item: String,
    pub(crate) case_no: String,
    pub(crate) result: String,
}

/// `POST /cases/{no}/commands`: a command as `{"command": NAME, …}`. A task
/// is completed at `POST /cases/{no}/tasks/{step}/complete`; a case starts
/// at `POST /cases`; timers fire, and deadlines follow a new calendar, by
/// themselves.
#[derive(Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub(crate) enum CommandBody {
    Signal(SignalBody),
    SubcaseFinished(SubcaseFinishedBody),
    SubmitMaterials(MaterialsBody),
    StartSpecial(SpecialStartBody),
    EndSpecial(SpecialEndBody),
    Terminate(TerminateBody),
    Withdraw(WithdrawBody),
}

/// Each variant's own object with `command` added to it: the variants'
/// schemas allow no other properties, so `command` cannot be a second
/// schema beside them (`allOf` would match nothing).
impl utoipa::PartialSchema for CommandBody {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let variant = |name: &str, s: RefOr<Schema>| -> RefOr<Schema> {
            match s {
                RefOr::T(Schema::Object(mut o)) => {
                    o.properties.insert(
                        "command".into(),
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some([name]))
                            .into(),
                    );
                    o.required.insert(0, "command".into());
                    RefOr::T(Schema::Object(o))
                }
                other => other,
            }
        };
        use utoipa::PartialSchema as P;
        OneOfBuilder::new()
            .item(variant("signal", <SignalBody as P>::schema()))
            .item(variant(
                "subcase_finished",
                <SubcaseFinishedBody as P>::schema(),
            ))
            .item(variant("submit_materials", <MaterialsBody as P>::schema()))
            .item(variant("start_special", <SpecialStartBody as P>::schema()))
            .item(variant("end_special", <SpecialEndBody as P>::schema()))
            .item(variant("terminate", <TerminateBody as P>::schema()))
            .item(variant("withdraw", <WithdrawBody as P>::schema()))
            .into()
    }
}

impl ToSchema for CommandBody {
    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        // The schemas the variants refer to (Actor, Material).
        SignalBody::schemas(out);
        SubcaseFinishedBody::schemas(out);
        MaterialsBody::schemas(out);
        SpecialStartBody::schemas(out);
        SpecialEndBody::schemas(out);
        TerminateBody::schemas(out);
        WithdrawBody::schemas(out);
    }
}

impl From<CommandBody> for Command {
    fn from(b: CommandBody) -> Command {
        match b {
            CommandBody::Signal(s) => Command::Signal {
                name: s.name,
                data: s.data,
            },
            CommandBody::SubcaseFinished(s) => Command::SubcaseFinished {
                step: s.step,
                item: s.item,
                case_no: s.case_no,
                result: s.result,
            },
            CommandBody::SubmitMaterials(b) => b.into(),
            CommandBody::StartSpecial(b) => b.into(),
            CommandBody::EndSpecial(b) => b.into(),
            CommandBody::Terminate(b) => b.into(),
            CommandBody::Withdraw(b) => b.into(),
        }
    }
}

impl StartBody {
    /// The `start` command (the case number is handed out by the store).
    pub(crate) fn into_command(self) -> Command {
        Command::Start {
            case_no: String::new(),
            applicant: self.applicant.into(),
            agent: self.agent.map(Into::into),
            source: self.source,
            project_code: self.project_code,
            data: self.data,
            materials: materials(self.materials),
        }
    }
}

impl CompleteBody {
    /// The `complete` command for the task at `step`.
    pub(crate) fn into_command(self, step: String) -> Command {
        Command::Complete {
            step,
            action: self.action,
            by: self.by.into(),
            opinion: self.opinion,
            data: self.data,
            missing: self.missing,
            defer: self.defer,
            defer_within: self.defer_within,
            document_no: self.document_no,
            fixes: self.fixes,
            on_site: self.on_site,
        }
    }
}
