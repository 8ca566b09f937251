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
//! on the next working day. A question whose answer lies outside the covered
//! range is an error, never a guess.

use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::BTreeMap;
use std::fmt;

/// The shipped calendar for mainland China (State Council notices 2024–2026).
pub const CN: &str = include_str!("../calendar/cn.txt");

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "{date} is outside the working-day calendar, which covers {first} to {last}; add the year's holiday notice with a calendar file (`--calendar FILE`)"
    )]
    OutOfRange {
        date: NaiveDate,
        first: NaiveDate,
        last: NaiveDate,
    },
    #[error(
        "counting from {start}, the result falls after {last}, where the working-day calendar ends; add the next year's holiday notice with a calendar file (`--calendar FILE`)"
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

/// An indexed working-day calendar. Cloning is cheap (the tables are shared).
#[derive(Clone)]
pub struct Calendar {
    first: NaiveDate,
    last: NaiveDate,
    t: std::sync::Arc<Tables>,
}

struct Tables {
    working: Vec<bool>,
    /// `count[i]` = working days in `[first, first+i]`.
    count: Vec<u32>,
    /// `nth[k]` = index of the (k+1)-th working day.
    nth: Vec<u32>,
    names: BTreeMap<NaiveDate, (DayKind, String)>,
}

impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Calendar({}..={})", self.first, self.last)
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

    /// The shipped calendar with region files merged over it, in order.
    pub fn china_with(overrides: &[String]) -> Result<Calendar, CalendarError> {
        let mut texts = vec![CN];
        texts.extend(overrides.iter().map(String::as_str));
        Calendar::from_texts(&texts)
    }

    pub fn from_texts(texts: &[&str]) -> Result<Calendar, CalendarError> {
        let mut data = CalendarData::default();
        for t in texts {
            data.merge_text(t)?;
        }
        Calendar::from_data(data)
    }

    pub fn from_data(data: CalendarData) -> Result<Calendar, CalendarError> {
        let (Some(first), Some(last)) = (data.first, data.last) else {
            return Err(CalendarError::Parse {
                line: 0,
                message: "the calendar has no `covers FIRST LAST` line".into(),
            });
        };
        let len = (last - first).num_days() as usize + 1;
        let mut working = Vec::with_capacity(len);
        let mut count = Vec::with_capacity(len);
        let mut nth = Vec::new();
        let mut n = 0u32;
        for (i, d) in first.iter_days().take(len).enumerate() {
            let weekday = !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
            let w = match data.days.get(&d) {
                Some((DayKind::Off, _)) => false,
                Some((DayKind::Work, _)) => true,
                None => weekday,
            };
            if w {
                n += 1;
                nth.push(i as u32);
            }
            working.push(w);
            count.push(n);
        }
        Ok(Calendar {
            first,
            last,
            t: std::sync::Arc::new(Tables {
                working,
                count,
                nth,
                names: data.days,
            }),
        })
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
    fn out_of_range_is_an_error() {
        let c = Calendar::china();
        let e = c.add_workdays(d("2026-12-20"), 20).unwrap_err();
        assert!(e.to_string().contains("falls after 2026-12-31"), "{e}");
        let e = c.add_workdays(d("2027-01-04"), 1).unwrap_err();
        assert!(
            e.to_string().contains("covers 2024-01-01 to 2026-12-31"),
            "{e}"
        );
        assert!(c.diff(d("2023-12-31"), d("2024-01-05")).is_err());
    }

    #[test]
    fn region_override_extends() {
        let c =
            Calendar::china_with(&["covers 2027-01-01 2027-01-31\noff 2027-01-01 元旦\n".into()])
                .unwrap();
        assert_eq!(c.last(), d("2027-01-31"));
        assert_eq!(c.add_workdays(d("2026-12-31"), 1).unwrap(), d("2027-01-04"));
        let bad = Calendar::china_with(&["holiday 2027-01-01".into()]).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "calendar line 1: unknown keyword `holiday`; expected `covers`, `off` or `work`"
        );
    }
}
