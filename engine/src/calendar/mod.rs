//! The working-day calendar and its exact, O(1) arithmetic.
//!
//! A calendar covers a closed range of dates. For every date in range it knows
//! whether it is a working day, and two precomputed tables answer every query
//! in constant time:
//! - `count[i]`: working days in `[first, first + i]`;
//! - `nth[k]`: the index of the (k+1)-th working day.
//!
//! Rules (行政许可法 art. 82, 民法典 arts. 201 and 203): the start day is not
//! counted; a period in calendar days whose last day is not a working day ends
//! on the next working day.
//!
//! Official years come from the State Council's annual notices (deployed as
//! data, `year.rs`); after the last of them the tables go on for
//! [`PROVISIONAL_YEARS`] years under the provisional rule (`statutory.rs`),
//! and every answer that touches such a day is marked provisional by its
//! caller ([`Calendar::provisional_between`]). Outside the tables a question is
//! an error, never a guess.

pub mod deployments;
pub mod statutory;
pub mod year;

use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::BTreeMap;
use std::fmt;
pub use year::{DayChange, Problem, YearArrangement};

/// The shipped calendar for mainland China (State Council notices 2024–2026).
pub const CN: &str = include_str!("../../calendar/cn.txt");

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "{date} is outside the working-day calendar, which reaches from {first} to {last} (official years, then the provisional rule); deploy the year's holiday notice (`govflow calendar import FILE`)"
    )]
    OutOfRange {
        date: NaiveDate,
        first: NaiveDate,
        last: NaiveDate,
    },
    #[error(
        "counting from {start}, the result falls after {last}, where the working-day calendar ends even provisionally; deploy the coming years' holiday notices (`govflow calendar import FILE`)"
    )]
    PastEnd { start: NaiveDate, last: NaiveDate },
    #[error("calendar line {line}: {message}")]
    Parse { line: usize, message: String },
}

/// What a calendar file says about one date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    Off,
    Work,
}

/// The parsed facts of one or more calendar files, before indexing.
#[derive(Clone, Debug, Default)]
pub struct CalendarData {
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
    pub days: BTreeMap<NaiveDate, (DayKind, String)>,
}

impl CalendarData {
    /// Reads a calendar file and merges it over what is already known: a later
    /// file may widen the covered range and overrides single dates.
    pub fn merge_text(&mut self, text: &str) -> Result<(), CalendarError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |message: String| CalendarError::Parse {
                line: i + 1,
                message,
            };
            let mut words = line.split_whitespace();
            let keyword = words.next().unwrap_or("");
            let date = |w: Option<&str>| -> Result<NaiveDate, CalendarError> {
                let w = w.ok_or_else(|| err(format!("`{keyword}` needs a date (YYYY-MM-DD)")))?;
                NaiveDate::parse_from_str(w, "%Y-%m-%d")
                    .map_err(|_| err(format!("`{w}` is not a date (YYYY-MM-DD)")))
            };
            match keyword {
                "covers" => {
                    let first = date(words.next())?;
                    let last = date(words.next())?;
                    if last < first {
                        return Err(err(format!("covers {first} {last}: the range is empty")));
                    }
                    self.first = Some(self.first.map_or(first, |f| f.min(first)));
                    self.last = Some(self.last.map_or(last, |l| l.max(last)));
                }
                "off" | "work" => {
                    let d = date(words.next())?;
                    let name = words.collect::<Vec<_>>().join(" ");
                    let kind = if keyword == "off" {
                        DayKind::Off
                    } else {
                        DayKind::Work
                    };
                    self.days.insert(d, (kind, name));
                }
                other => {
                    return Err(err(format!(
                        "unknown keyword `{other}`; expected `covers`, `off` or `work`"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Years past the last official one that the tables reach with the
/// provisional rule ([`statutory`]).
pub const PROVISIONAL_YEARS: i32 = 10;

impl CalendarData {
    /// The file's facts split into years: every year its `covers` range
    /// touches, with the dates listed in it.
    pub fn years(&self) -> Vec<YearArrangement> {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return Vec::new();
        };
        (first.year()..=last.year())
            .map(|year| YearArrangement {
                year,
                days: self
                    .days
                    .iter()
                    .filter(|(d, _)| d.year() == year)
                    .map(|(d, v)| (*d, v.clone()))
                    .collect(),
            })
            .collect()
    }
}

/// An indexed working-day calendar. Cloning is cheap (the tables are shared).
///
/// It holds the official arrangements of some years (national, with region
/// overlays merged over them) and reaches [`PROVISIONAL_YEARS`] further with
/// the provisional rule of [`statutory`]: weekends and the statutory holidays
/// off, no 调休. Every answer that touches a provisional day says so
/// ([`Calendar::provisional_between`]).
#[derive(Clone)]
pub struct Calendar {
    first: NaiveDate,
    last: NaiveDate,
    /// The last day of the official years that follow `first` without a gap.
    covered: NaiveDate,
    t: std::sync::Arc<Tables>,
}

struct Tables {
    working: Vec<bool>,
    /// `count[i]` = working days in `[first, first+i]`.
    count: Vec<u32>,
    /// `nth[k]` = index of the (k+1)-th working day.
    nth: Vec<u32>,
    /// `unofficial[i]` = days in `[first, first+i]` no official arrangement covers.
    unofficial: Vec<u32>,
    names: BTreeMap<NaiveDate, (DayKind, String)>,
    provisional: BTreeMap<NaiveDate, &'static str>,
    years: Vec<i32>,
}

impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Calendar({}..={}, official to {})",
            self.first, self.last, self.covered
        )
    }
}

impl Calendar {
    /// The shipped calendar for mainland China.
    pub fn china() -> Calendar {
        // The shipped file is part of the build and covered by tests.
        match Calendar::from_texts(&[CN]) {
            Ok(c) => c,
            Err(e) => panic!("the shipped calendar is broken: {e}"),
        }
    }

    /// The shipped years, as a calendar deployment seeds them.
    pub fn shipped_years() -> Vec<YearArrangement> {
        let mut data = CalendarData::default();
        match data.merge_text(CN) {
            Ok(()) => data.years(),
            Err(_) => Vec::new(),
        }
    }

    /// The shipped calendar with region files (in the `covers`/`off`/`work`
    /// format) merged over it, in order: they change single dates; only
    /// official national years extend what is covered.
    pub fn china_with(overrides: &[String]) -> Result<Calendar, CalendarError> {
        let mut overlays = Vec::new();
        for text in overrides {
            let mut data = CalendarData::default();
            data.merge_text(text)?;
            overlays.extend(data.years());
        }
        Calendar::from_years(&Calendar::shipped_years(), &overlays)
    }

    /// A calendar from files in the `covers`/`off`/`work` format: each
    /// covered year is an official year.
    pub fn from_texts(texts: &[&str]) -> Result<Calendar, CalendarError> {
        let mut data = CalendarData::default();
        for t in texts {
            data.merge_text(t)?;
        }
        Calendar::from_data(data)
    }

    pub fn from_data(data: CalendarData) -> Result<Calendar, CalendarError> {
        if data.first.is_none() {
            return Err(CalendarError::Parse {
                line: 0,
                message: "the calendar has no `covers FIRST LAST` line".into(),
            });
        }
        Calendar::from_years(&data.years(), &[])
    }

    /// Official national years, with overlays (a region's own days) merged
    /// over them; years after the last official one follow the provisional
    /// rule. A later arrangement of the same year replaces an earlier one.
    pub fn from_years(
        national: &[YearArrangement],
        overlays: &[YearArrangement],
    ) -> Result<Calendar, CalendarError> {
        let mut years: BTreeMap<i32, &YearArrangement> = BTreeMap::new();
        for y in national {
            years.insert(y.year, y);
        }
        let (Some(&y0), Some(&y1)) = (years.keys().next(), years.keys().next_back()) else {
            return Err(CalendarError::Parse {
                line: 0,
                message: "the calendar has no official year".into(),
            });
        };
        let end_year = (y1 + PROVISIONAL_YEARS).min(statutory::LUNAR_YEARS.1);
        let (Some(first), Some(last)) = (
            NaiveDate::from_ymd_opt(y0, 1, 1),
            NaiveDate::from_ymd_opt(end_year, 12, 31),
        ) else {
            return Err(CalendarError::Parse {
                line: 0,
                message: format!("years {y0}..{y1} are out of range"),
            });
        };
        let mut covered_year = y0;
        while years.contains_key(&(covered_year + 1)) {
            covered_year += 1;
        }
        let covered = NaiveDate::from_ymd_opt(covered_year, 12, 31).unwrap_or(last);
        let mut overlay: BTreeMap<NaiveDate, (DayKind, String)> = BTreeMap::new();
        for o in overlays {
            overlay.extend(o.days.iter().map(|(d, v)| (*d, v.clone())));
        }
        let mut provisional = BTreeMap::new();
        for y in y0..=end_year {
            if !years.contains_key(&y) {
                provisional.extend(statutory::holidays(y));
            }
        }
        let len = (last - first).num_days() as usize + 1;
        let mut working = Vec::with_capacity(len);
        let mut count = Vec::with_capacity(len);
        let mut unofficial = Vec::with_capacity(len);
        let mut nth = Vec::new();
        let (mut n, mut u) = (0u32, 0u32);
        let mut names = BTreeMap::new();
        for (i, d) in first.iter_days().take(len).enumerate() {
            let weekday = !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
            let listed = overlay
                .get(&d)
                .or_else(|| years.get(&d.year()).and_then(|y| y.days.get(&d)));
            let official = years.contains_key(&d.year());
            let w = match listed {
                Some((DayKind::Off, _)) => false,
                Some((DayKind::Work, _)) => true,
                None if official => weekday,
                None => weekday && !provisional.contains_key(&d),
            };
            if let Some(v) = listed {
                names.insert(d, v.clone());
            }
            if !official {
                u += 1;
            }
            if w {
                n += 1;
                nth.push(i as u32);
            }
            working.push(w);
            count.push(n);
            unofficial.push(u);
        }
        Ok(Calendar {
            first,
            last,
            covered,
            t: std::sync::Arc::new(Tables {
                working,
                count,
                nth,
                unofficial,
                names,
                provisional,
                years: years.keys().copied().collect(),
            }),
        })
    }

    /// The last day official arrangements cover without a gap: past it,
    /// answers are provisional.
    pub fn covered_until(&self) -> NaiveDate {
        self.covered
    }

    /// The years with an official arrangement.
    pub fn official_years(&self) -> &[i32] {
        &self.t.years
    }

    /// Whether any day of `[from, to]` lies in a year no official
    /// arrangement covers (or outside the tables).
    pub fn provisional_between(&self, from: NaiveDate, to: NaiveDate) -> bool {
        let (from, to) = if to < from { (to, from) } else { (from, to) };
        match (self.index(from), self.index(to)) {
            (Ok(a), Ok(b)) => {
                let before = if a == 0 { 0 } else { self.t.unofficial[a - 1] };
                self.t.unofficial[b] > before
            }
            _ => true,
        }
    }

    /// The holidays the provisional rule takes off, in the years no official
    /// arrangement covers.
    pub fn provisional_holidays(&self) -> impl Iterator<Item = (NaiveDate, &'static str)> + '_ {
        self.t.provisional.iter().map(|(d, n)| (*d, *n))
    }

    /// The days of `year` whose standing (working or not) differs between this
    /// calendar and `after`, with their names in each.
    pub fn changes_to(&self, after: &Calendar, year: i32) -> Vec<DayChange> {
        let Some(first) = NaiveDate::from_ymd_opt(year, 1, 1) else {
            return Vec::new();
        };
        first
            .iter_days()
            .take_while(|d| d.year() == year)
            .filter_map(|d| {
                let was = self.is_working_day(d).ok()?;
                let now = after.is_working_day(d).ok()?;
                (was != now).then(|| DayChange {
                    date: d,
                    was_working: was,
                    working: now,
                    was: self.day_name(d),
                    now: after.day_name(d),
                })
            })
            .collect()
    }

    /// Working days in `year` (None when the tables do not cover it whole).
    pub fn working_days_in(&self, year: i32) -> Option<i64> {
        let start = NaiveDate::from_ymd_opt(year, 1, 1)?;
        let end = NaiveDate::from_ymd_opt(year, 12, 31)?;
        let before = if self.is_working_day(start).ok()? {
            1
        } else {
            0
        };
        Some(self.diff(start, end).ok()? + before)
    }

    fn day_name(&self, d: NaiveDate) -> String {
        self.t
            .names
            .get(&d)
            .map(|(_, n)| n.clone())
            .or_else(|| self.t.provisional.get(&d).map(|n| n.to_string()))
            .unwrap_or_default()
    }

    /// How `new` would change the standing of the days of its year, against
    /// this calendar (official or provisional).
    pub fn changes(&self, new: &YearArrangement) -> Vec<DayChange> {
        let Some(first) = NaiveDate::from_ymd_opt(new.year, 1, 1) else {
            return Vec::new();
        };
        let name_of = |d: NaiveDate| -> String {
            self.t
                .names
                .get(&d)
                .map(|(_, n)| n.clone())
                .or_else(|| self.t.provisional.get(&d).map(|n| n.to_string()))
                .unwrap_or_default()
        };
        first
            .iter_days()
            .take_while(|d| d.year() == new.year)
            .filter_map(|d| {
                let was_working = self.is_working_day(d).ok();
                let working = new.is_working_day(d);
                let was = name_of(d);
                let now = new.days.get(&d).map(|(_, n)| n.clone()).unwrap_or_default();
                if was_working == Some(working) && was == now {
                    return None;
                }
                Some(DayChange {
                    date: d,
                    was_working: was_working.unwrap_or(!working),
                    working,
                    was,
                    now,
                })
            })
            .collect()
    }

    pub fn first(&self) -> NaiveDate {
        self.first
    }
    pub fn last(&self) -> NaiveDate {
        self.last
    }

    /// The holidays and make-up days the calendar lists.
    pub fn listed_days(&self) -> impl Iterator<Item = (NaiveDate, DayKind, &str)> {
        self.t
            .names
            .iter()
            .map(|(d, (k, name))| (*d, *k, name.as_str()))
    }

    fn index(&self, d: NaiveDate) -> Result<usize, CalendarError> {
        if d < self.first || d > self.last {
            return Err(self.out_of_range(d));
        }
        Ok((d - self.first).num_days() as usize)
    }

    fn out_of_range(&self, date: NaiveDate) -> CalendarError {
        CalendarError::OutOfRange {
            date,
            first: self.first,
            last: self.last,
        }
    }

    fn date_at(&self, i: usize) -> NaiveDate {
        self.first + chrono::Days::new(i as u64)
    }

    pub fn is_working_day(&self, d: NaiveDate) -> Result<bool, CalendarError> {
        Ok(self.t.working[self.index(d)?])
    }

    /// The `n`-th working day after `start` (the start day is not counted).
    /// `n == 0` gives `start` itself.
    pub fn add_workdays(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let i = self.index(start)?;
        if n == 0 {
            return Ok(start);
        }
        // count[i] working days up to and including start; we want the
        // (count[i] + n)-th working day, at nth[count[i] + n - 1].
        let k = self.t.count[i] as usize + n as usize - 1;
        match self.t.nth.get(k) {
            Some(&j) => Ok(self.date_at(j as usize)),
            None => Err(CalendarError::PastEnd {
                start,
                last: self.last,
            }),
        }
    }

    /// `n` calendar days after `start`; when that day is not a working day the
    /// period ends on the next working day (民法典 art. 203).
    pub fn add_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let end = start + chrono::Days::new(u64::from(n));
        self.roll_forward(end)
    }

    /// The date itself when it is a working day, otherwise the next one.
    pub fn roll_forward(&self, d: NaiveDate) -> Result<NaiveDate, CalendarError> {
        let i = self.index(d)?;
        if self.t.working[i] {
            return Ok(d);
        }
        // count[i] working days up to d; the next one is nth[count[i]].
        match self.t.nth.get(self.t.count[i] as usize) {
            Some(&j) => Ok(self.date_at(j as usize)),
            None => Err(CalendarError::PastEnd {
                start: d,
                last: self.last,
            }),
        }
    }

    /// Working days after `from` up to and including `to`; negative when `to`
    /// is before `from`.
    pub fn diff(&self, from: NaiveDate, to: NaiveDate) -> Result<i64, CalendarError> {
        let a = self.t.count[self.index(from)?];
        let b = self.t.count[self.index(to)?];
        Ok(i64::from(b) - i64::from(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn national_day_2025() {
        let c = Calendar::china();
        // 2025-09-28 (Sun) and 2025-10-11 (Sat) are make-up days; 10-01..08 off.
        assert_eq!(
            c.add_workdays(d("2025-09-26"), 20).unwrap(),
            d("2025-10-30")
        );
        assert_eq!(c.diff(d("2025-09-26"), d("2025-10-30")).unwrap(), 20);
        assert!(c.is_working_day(d("2025-09-28")).unwrap());
        assert!(!c.is_working_day(d("2025-10-08")).unwrap());
        assert!(c.is_working_day(d("2025-10-11")).unwrap());
    }

    #[test]
    fn start_day_not_counted_and_zero() {
        let c = Calendar::china();
        assert_eq!(c.add_workdays(d("2025-06-06"), 1).unwrap(), d("2025-06-09"));
        assert_eq!(c.add_workdays(d("2025-06-07"), 1).unwrap(), d("2025-06-09"));
        assert_eq!(c.add_workdays(d("2025-06-07"), 0).unwrap(), d("2025-06-07"));
        assert_eq!(c.diff(d("2025-06-09"), d("2025-06-06")).unwrap(), -1);
    }

    #[test]
    fn calendar_days_end_on_working_day() {
        let c = Calendar::china();
        // 2025-09-26 + 5 days = 10-01 (holiday) → next working day 10-09.
        assert_eq!(c.add_days(d("2025-09-26"), 5).unwrap(), d("2025-10-09"));
        assert_eq!(c.add_days(d("2025-09-26"), 3).unwrap(), d("2025-09-29"));
    }

    #[test]
    fn agrees_with_naive_counting() {
        let c = Calendar::china();
        let mut start = d("2024-01-01");
        while start < d("2026-10-01") {
            let mut n = 0;
            let mut day = start;
            while n < 45 {
                day = day.succ_opt().unwrap();
                if c.is_working_day(day).unwrap() {
                    n += 1;
                    assert_eq!(c.add_workdays(start, n).unwrap(), day);
                    assert_eq!(c.diff(start, day).unwrap(), i64::from(n));
                }
            }
            start = start + chrono::Days::new(7);
        }
    }

    #[test]
    fn past_the_official_years_answers_are_provisional() {
        let c = Calendar::china();
        assert_eq!(c.covered_until(), d("2026-12-31"));
        // 2026-12-20 (Sun) + 20 working days: 元旦 2027-01-01 (Fri) is off.
        let due = c.add_workdays(d("2026-12-20"), 20).unwrap();
        assert_eq!(due, d("2027-01-18"));
        assert!(c.provisional_between(d("2026-12-20"), due));
        assert!(!c.provisional_between(d("2026-12-01"), d("2026-12-31")));
        // 春节 2027: 除夕 02-05 to 初三 02-08 off, no 调休.
        assert!(!c.is_working_day(d("2027-02-05")).unwrap());
        assert!(!c.is_working_day(d("2027-02-08")).unwrap());
        assert!(c.is_working_day(d("2027-02-09")).unwrap());
        assert_eq!(c.last(), d("2036-12-31"));
        let e = c.add_workdays(d("2036-12-20"), 20).unwrap_err();
        assert!(e.to_string().contains("falls after 2036-12-31"), "{e}");
        assert!(c.diff(d("2023-12-31"), d("2024-01-05")).is_err());
    }

    #[test]
    fn the_provisional_rule_agrees_with_the_official_holidays() {
        // Since the 2024 amendment took effect (2025), every holiday the
        // provisional rule computes is a day off in the official notices.
        let c = Calendar::china();
        for y in [2025, 2026] {
            for (day, name) in statutory::holidays(y) {
                assert!(!c.is_working_day(day).unwrap(), "{day} {name}");
            }
        }
    }

    #[test]
    fn a_deployed_year_replaces_the_provisional_rule() {
        let mut years = Calendar::shipped_years();
        let fixture = year::parse(
            "year 2027\n2027-01-01 off 元旦\n2027-02-06 off 测试\n2027-01-09 work 测试调休\n",
        )
        .unwrap();
        let old = Calendar::from_years(&years, &[]).unwrap();
        let changes = old.changes(&fixture);
        let dates: Vec<String> = changes.iter().map(|c| c.date.to_string()).collect();
        assert!(dates.contains(&"2027-01-09".to_string()), "{dates:?}");
        assert!(dates.contains(&"2027-02-05".to_string()), "{dates:?}");
        years.push(fixture);
        let c = Calendar::from_years(&years, &[]).unwrap();
        assert_eq!(c.covered_until(), d("2027-12-31"));
        assert!(c.is_working_day(d("2027-01-09")).unwrap());
        assert!(c.is_working_day(d("2027-02-05")).unwrap());
        assert!(!c.provisional_between(d("2027-01-01"), d("2027-12-31")));
        assert!(c.provisional_between(d("2027-12-31"), d("2028-01-02")));
    }

    #[test]
    fn region_overlay_changes_days_not_coverage() {
        let c = Calendar::china_with(&[
            "covers 2026-06-01 2026-06-30\noff 2026-06-15 地方节日\n".into()
        ])
        .unwrap();
        assert_eq!(c.covered_until(), d("2026-12-31"));
        assert!(!c.is_working_day(d("2026-06-15")).unwrap());
        let bad = Calendar::china_with(&["holiday 2027-01-01".into()]).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "calendar line 1: unknown keyword `holiday`; expected `covers`, `off` or `work`"
        );
    }
}
