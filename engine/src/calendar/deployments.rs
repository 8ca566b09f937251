//! Calendars are deployments: each year's official arrangement is a row of
//! the `deployments` table under `calendar/<REGION>/<YEAR>` — `CN` for the
//! national arrangement, a 6-digit division code for a region's own days
//! merged over it — versioned and audited like flows and rule files. The
//! calendar in force on a node is the latest version of every national year,
//! with the overlays of its division and of the prefecture and province above
//! it; every node checks for a newer calendar before each command and timer
//! claim ([`crate::service::Engine::sync_deployments`]).

use crate::calendar::{Calendar, YearArrangement, year};
use crate::core::Time;
use crate::store::{Deployment, Store, StoreError};
use chrono::Datelike;

/// The prefix of calendar deployments in the `deployments` table.
pub const CALENDAR_DEPLOYMENT: &str = "calendar/";
/// The region of the national arrangement.
pub const NATIONAL: &str = "CN";

/// The deployment id of a region's year.
pub fn deployment_id(region: &str, year: i32) -> String {
    format!("{CALENDAR_DEPLOYMENT}{region}/{year}")
}

/// `calendar/<REGION>/<YEAR>` → (region, year).
pub fn parse_id(id: &str) -> Option<(&str, i32)> {
    let rest = id.strip_prefix(CALENDAR_DEPLOYMENT)?;
    let (region, year) = rest.split_once('/')?;
    Some((region, year.parse().ok()?))
}

/// Whether `region` is `NATIONAL` or a 6-digit division code.
pub fn valid_region(region: &str) -> bool {
    region == NATIONAL || (region.len() == 6 && region.bytes().all(|b| b.is_ascii_digit()))
}

/// The regions whose overlays apply to a division: itself, its prefecture
/// (`3301xx` → `330100`) and its province (`33xxxx` → `330000`).
pub fn overlay_regions(division: &str) -> Vec<String> {
    let mut out = vec![division.to_string()];
    if division.len() == 6 && division.is_ascii() {
        for r in [
            format!("{}00", &division[..4]),
            format!("{}0000", &division[..2]),
        ] {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// One deployed year in force.
#[derive(Clone, Debug, serde::Serialize)]
pub struct YearInForce {
    pub region: String,
    pub year: i32,
    pub version: i64,
    pub deployed_at: String,
    pub deployed_by: String,
    pub working_days: u32,
}

/// The calendar a node uses, and where it came from.
#[derive(Clone, Debug)]
pub struct InForce {
    pub calendar: Calendar,
    /// The newest calendar deployment's row id: a change means a new calendar.
    pub marker: i64,
    /// The newest deployment as events name it: `calendar/CN/2027 v1`.
    pub label: String,
    pub years: Vec<YearInForce>,
    /// Stored versions that no longer read (reported, left out).
    pub problems: Vec<String>,
}

/// Builds the calendar in force from the stored calendar deployments (the
/// shipped years stand in for national years never deployed).
pub fn build(rows: &[(Deployment, String, i64)], division: &str) -> InForce {
    let regions = overlay_regions(division);
    let mut latest: std::collections::BTreeMap<(String, i32), &(Deployment, String, i64)> =
        std::collections::BTreeMap::new();
    let mut marker = 0;
    let mut label = String::from("shipped");
    for row in rows {
        let Some((region, y)) = parse_id(&row.0.flow_id) else {
            continue;
        };
        if row.2 > marker {
            marker = row.2;
            label = format!("{} v{}", row.0.flow_id, row.0.version);
        }
        let key = (region.to_string(), y);
        if latest
            .get(&key)
            .is_none_or(|old| old.0.version < row.0.version)
        {
            latest.insert(key, row);
        }
    }
    let mut national: std::collections::BTreeMap<i32, YearArrangement> = Calendar::shipped_years()
        .into_iter()
        .map(|y| (y.year, y))
        .collect();
    let mut overlays = Vec::new();
    let mut years = Vec::new();
    let mut problems = Vec::new();
    for ((region, y), (d, source, _)) in &latest {
        let arrangement = match year::parse(source) {
            Ok(a) if a.year == *y => a,
            Ok(a) => {
                problems.push(format!("{} v{}: holds {}", d.flow_id, d.version, a.year));
                continue;
            }
            Err(ps) => {
                let first = ps.first().map(|p| p.message.clone()).unwrap_or_default();
                problems.push(format!("{} v{}: {first}", d.flow_id, d.version));
                continue;
            }
        };
        let info = YearInForce {
            region: region.clone(),
            year: *y,
            version: d.version,
            deployed_at: d.deployed_at.clone(),
            deployed_by: d.deployed_by.clone(),
            working_days: arrangement.working_days(),
        };
        if region == NATIONAL {
            national.insert(*y, arrangement);
            years.push(info);
        } else if regions.contains(region) {
            overlays.push(arrangement);
            years.push(info);
        }
    }
    let national: Vec<YearArrangement> = national.into_values().collect();
    let calendar = match Calendar::from_years(&national, &overlays) {
        Ok(c) => c,
        Err(e) => {
            problems.push(e.to_string());
            Calendar::china()
        }
    };
    InForce {
        calendar,
        marker,
        label,
        years,
        problems,
    }
}

impl Store {
    /// Records the shipped years as calendar deployments where a year has
    /// none yet (a year an operator deployed is never replaced by the shipped
    /// text). Two nodes starting together may race: the loser sees the row.
    pub async fn seed_calendar(&self, now: Time) -> Result<usize, StoreError> {
        let have: std::collections::BTreeSet<String> = self
            .calendar_deployments()
            .await?
            .into_iter()
            .map(|(d, _, _)| d.flow_id)
            .collect();
        let mut seeded = 0;
        for y in Calendar::shipped_years() {
            let id = deployment_id(NATIONAL, y.year);
            if have.contains(&id) {
                continue;
            }
            let text = y.to_text();
            let file = format!("engine/calendar/cn.txt#{}", y.year);
            match self
                .deploy(&id, &text, &file, "govflow (shipped)", now)
                .await
            {
                Ok(_) => seeded += 1,
                // Another node seeded it between our read and our write.
                Err(_) if self.deployments(&id).await.is_ok_and(|v| !v.is_empty()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(seeded)
    }
}

/// The calendar in force after deploying `y` for `region`: the stored
/// deployments plus this one as their newest version (what a preview shows).
pub fn after_deploy(
    rows: &[(Deployment, String, i64)],
    division: &str,
    region: &str,
    y: &YearArrangement,
) -> InForce {
    let id = deployment_id(region, y.year);
    let version = rows
        .iter()
        .filter(|r| r.0.flow_id == id)
        .map(|r| r.0.version)
        .max()
        .unwrap_or(0)
        + 1;
    let mut rows = rows.to_vec();
    rows.push((
        Deployment {
            flow_id: id,
            version,
            hash: String::new(),
            file: "preview".into(),
            deployed_at: String::new(),
            deployed_by: String::new(),
        },
        y.to_text(),
        i64::MAX,
    ));
    build(&rows, division)
}

/// What deploying a year would be refused for beyond its file's own
/// problems: a year the tables cannot hold (before the first official year,
/// or more than a year past the covered ones), and — for a national year —
/// a statutory holiday of the 2024 measures on a weekday left as a working
/// day (only 调休 moves weekends; no notice removes a public holiday).
pub fn check_import(
    current: &Calendar,
    region: &str,
    y: &YearArrangement,
    text: &str,
) -> Vec<year::Problem> {
    let mut out = Vec::new();
    let first = current.first().year();
    let last = current.covered_until().year() + 1;
    if y.year < first || y.year > last {
        out.push(year::whole_file_problem(
            text,
            "calendar::year_out_of_range",
            format!("{} 年不在可导入的范围（{first} 至 {last} 年）", y.year),
            format!(
                "{} is outside the years that can be loaded ({first} to {last})",
                y.year
            ),
            "先导入下一年的安排；更远的年份等国务院发布通知后再导入",
            "load next year's arrangement first; later years once their notice is published",
        ));
    }
    if region == NATIONAL && y.year >= 2025 {
        let missing: Vec<String> = crate::calendar::statutory::holidays(y.year)
            .into_iter()
            .filter(|(d, _)| y.is_working_day(*d))
            .map(|(d, name)| format!("{d} {name}"))
            .collect();
        if !missing.is_empty() {
            out.push(year::whole_file_problem(
                text,
                "calendar::holiday_missing",
                format!("法定节假日在文件中是工作日：{}", missing.join("、")),
                format!("statutory holidays left as working days: {}", missing.join(", ")),
                "《全国年节及纪念日放假办法》第二条规定的节日每年放假；逐日列为 off（落在周末的也可列出）",
                "the national holiday measures (art. 2) give these days off every year; list them as `off`",
            ));
        }
    }
    out
}

/// Deploys a year for a region: a new version unless the text in force is
/// the same. A text an older version had is deployed again as the newest (a
/// rollback), with a comment saying so: versions are never reused.
pub async fn deploy_year(
    store: &Store,
    region: &str,
    y: &YearArrangement,
    file: &str,
    actor: &str,
    now: Time,
) -> Result<(Deployment, bool), StoreError> {
    let id = deployment_id(region, y.year);
    let text = y.to_text();
    let (d, new) = store.deploy(&id, &text, file, actor, now).await?;
    if new {
        return Ok((d, true));
    }
    let latest = store
        .deployments(&id)
        .await?
        .into_iter()
        .map(|d| d.version)
        .max()
        .unwrap_or(0);
    if d.version == latest {
        return Ok((d, false));
    }
    let again = format!(
        "{text}# {} 重新部署第 {} 版的内容 / version {} deployed again\n",
        now.format("%Y-%m-%dT%H:%M:%S+08:00"),
        d.version,
        d.version
    );
    store.deploy(&id, &again, file, actor, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_regions() {
        assert_eq!(deployment_id("CN", 2027), "calendar/CN/2027");
        assert_eq!(parse_id("calendar/330100/2027"), Some(("330100", 2027)));
        assert_eq!(parse_id("rules/a.rules"), None);
        assert_eq!(overlay_regions("330106"), ["330106", "330100", "330000"]);
        assert!(valid_region("CN") && valid_region("330100") && !valid_region("3301"));
    }

    fn d(s: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_region_overlay_previews_as_its_own_days_only() {
        let before = build(&[], "330106");
        let local = year::parse("year 2027\n2027-03-03 off 地方节日（测试）\n").unwrap();
        let after = after_deploy(&[], "330106", "330100", &local).calendar;
        let changes = before.calendar.changes_to(&after, 2027);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].date, d("2027-03-03"));
        // 春节 stays off (the provisional national rule), the region adds its day.
        assert!(!after.is_working_day(d("2027-02-08")).unwrap());
        assert!(check_import(&before.calendar, "330100", &local, "").is_empty());
    }

    #[test]
    fn imports_are_checked_against_the_law_and_the_tables() {
        let cal = build(&[], "330100").calendar;
        let thin = year::parse("year 2026\n2026-01-01 off 元旦\n").unwrap();
        let p = check_import(&cal, NATIONAL, &thin, "year 2026\n2026-01-01 off 元旦\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].code, "calendar::holiday_missing");
        assert!(p[0].message_zh.contains("春节"), "{}", p[0].message_zh);
        let far = year::parse("year 2040\n2040-01-01 off 元旦\n").unwrap();
        let p = check_import(&cal, "330100", &far, "");
        assert_eq!(p[0].code, "calendar::year_out_of_range");
    }
}
