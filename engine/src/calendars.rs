//! Calendars are deployments: each year's official arrangement is a row of
//! the `deployments` table under `calendar/<REGION>/<YEAR>` — `CN` for the
//! national arrangement, a 6-digit division code for a region's own days
//! merged over it — versioned and audited like flows and rule files. The
//! calendar in force on a node is the latest version of every national year,
//! with the overlays of its division and of the prefecture and province above
//! it; every node checks for a newer calendar before each command and timer
//! claim ([`crate::service::Engine::refresh_calendar`]).

use crate::alarms::with_pools;
use crate::calendar::{Calendar, YearArrangement, year};
use crate::core::Time;
use crate::store::{Deployment, Store, StoreError};
use sqlx::Row;

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
    /// The id of the newest calendar deployment (0 when none): one indexed
    /// lookup, made before every command and timer claim.
    pub async fn calendar_marker(&self) -> Result<i64, StoreError> {
        with_pools!(self, |_w, r, _lock| {
            let row = sqlx::query(
                "SELECT COALESCE(MAX(id), 0) AS m FROM deployments WHERE flow_id >= 'calendar/' AND flow_id < 'calendar0'",
            )
            .fetch_one(r)
            .await?;
            Ok(row.try_get::<i64, _>("m")?)
        })
    }

    /// Every calendar deployment with its source and row id, oldest first.
    pub async fn calendar_deployments(&self) -> Result<Vec<(Deployment, String, i64)>, StoreError> {
        with_pools!(self, |_w, r, _lock| {
            let rows = sqlx::query(
                "SELECT id, flow_id, version, hash, file, deployed_at, deployed_by, source FROM deployments WHERE flow_id >= 'calendar/' AND flow_id < 'calendar0' ORDER BY id",
            )
            .fetch_all(r)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push((
                    Deployment {
                        flow_id: row.try_get("flow_id")?,
                        version: row.try_get("version")?,
                        hash: row.try_get("hash")?,
                        file: row.try_get("file")?,
                        deployed_at: row.try_get("deployed_at")?,
                        deployed_by: row.try_get("deployed_by")?,
                    },
                    row.try_get("source")?,
                    row.try_get::<i64, _>("id")?,
                ));
            }
            Ok(out)
        })
    }

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

/// Whether a stored snapshot holds a provisional deadline (serde writes the
/// flag only when it is set).
pub(crate) fn has_provisional(snapshot: &str) -> bool {
    snapshot.contains("\"provisional\":true")
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
}
