//! One year's official arrangement (国务院办公厅关于部分节假日安排的通知), as an
//! operator imports it: read from the holiday-cn JSON format or the plain-text
//! format, checked, and compared with what is in force.
//!
//! Plain text, one date a line (`#` starts a comment):
//!
//! ```text
//! year 2027                 # optional; otherwise the year of the first date
//! 2027-01-01 off 元旦        # a day off that would be a working day (or is a weekend day of the holiday)
//! 2027-02-07 work 春节调休    # a make-up working day (调休): must be a Saturday or Sunday
//! ```
//!
//! holiday-cn JSON (<https://github.com/NateScarlet/holiday-cn>):
//! `{"year": 2027, "papers": [...], "days": [{"name": "元旦", "date": "2027-01-01", "isOffDay": true}, ...]}`.
//!
//! Every problem is reported at once, each with its line and column, a
//! stable code, a Chinese and an English text, and a hint.

use super::DayKind;
use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::BTreeMap;

/// One year's days off and make-up working days. Dates not listed follow the
/// week: Monday to Friday work, Saturday and Sunday off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YearArrangement {
    pub year: i32,
    pub days: BTreeMap<NaiveDate, (DayKind, String)>,
}

/// A problem in a calendar file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Stable code: `calendar::not_in_year`, `calendar::duplicate`,
    /// `calendar::workday_not_weekend`, `calendar::empty_year`,
    /// `calendar::syntax`.
    pub code: &'static str,
    /// 1-based line and column (0 when the problem is the whole file).
    pub line: usize,
    pub column: usize,
    /// Byte offset and length of the text the problem is about.
    pub offset: usize,
    pub len: usize,
    pub message_zh: String,
    pub message: String,
    pub hint_zh: String,
    pub hint: String,
}

/// Which format a file is in: JSON when its first non-blank character is `{`.
/// A UTF-8 byte-order mark (some editors write one) is ignored.
pub fn parse(text: &str) -> Result<YearArrangement, Vec<Problem>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_plain(text)
    }
}

/// A problem about the whole file, placed at its `year` line (or the start).
pub fn whole_file_problem(
    text: &str,
    code: &'static str,
    zh: String,
    en: String,
    hint_zh: &str,
    hint: &str,
) -> Problem {
    let at = At { text };
    let offset = text.find("year").unwrap_or(0);
    at.problem(code, offset, 4, zh, en, hint_zh, hint)
}

struct At<'a> {
    text: &'a str,
}

impl At<'_> {
    #[allow(clippy::too_many_arguments)]
    fn problem(
        &self,
        code: &'static str,
        offset: usize,
        len: usize,
        zh: String,
        en: String,
        hint_zh: &str,
        hint: &str,
    ) -> Problem {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Problem {
            code,
            line,
            column,
            offset,
            len,
            message_zh: zh,
            message: en,
            hint_zh: hint_zh.to_string(),
            hint: hint.to_string(),
        }
    }
}

/// One listed date with where it was written.
struct Entry {
    date: NaiveDate,
    kind: DayKind,
    name: String,
    offset: usize,
    len: usize,
}

fn parse_plain(text: &str) -> Result<YearArrangement, Vec<Problem>> {
    let at = At { text };
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    let mut year: Option<(i32, usize)> = None;
    let mut base = 0;
    for raw in text.split_inclusive('\n') {
        let line_base = base;
        base += raw.len();
        // Words are slices of `raw`: their offset in the file is the line's plus theirs.
        let offset_of = |s: &str| line_base + (s.as_ptr() as usize - raw.as_ptr() as usize);
        let content = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = content.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["year", y] if year.is_some() => problems.push(at.problem(
                "calendar::syntax",
                offset_of(y),
                y.len(),
                "`year` 只能写一次".to_string(),
                "`year` is given twice".to_string(),
                "一个文件只写一年的安排",
                "a file holds one year's arrangement",
            )),
            ["year", y] => match y.parse::<i32>() {
                Ok(v) if (1900..=2099).contains(&v) => year = Some((v, offset_of(y))),
                _ => problems.push(at.problem(
                    "calendar::syntax",
                    offset_of(y),
                    y.len(),
                    format!("`{y}` 不是年份"),
                    format!("`{y}` is not a year"),
                    "写成四位数字，例如 `year 2027`",
                    "write four digits, like `year 2027`",
                )),
            },
            [date, kind, name @ ..] if *kind == "off" || *kind == "work" => {
                match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
                    Ok(d) => entries.push(Entry {
                        date: d,
                        kind: if *kind == "off" {
                            DayKind::Off
                        } else {
                            DayKind::Work
                        },
                        name: name.join(" "),
                        offset: offset_of(date),
                        len: date.len(),
                    }),
                    Err(_) => problems.push(bad_date(&at, date, offset_of(date))),
                }
            }
            [first, ..] => {
                let w = *first;
                problems.push(at.problem(
                    "calendar::syntax",
                    offset_of(w),
                    content.trim_end().len().saturating_sub(offset_of(w) - line_base),
                    "每行应为：日期 off|work [名称]".to_string(),
                    "each line is: DATE off|work [name]".to_string(),
                    "例如 `2027-01-01 off 元旦`、`2027-02-07 work 春节调休`；`#` 之后为注释",
                    "for example `2027-01-01 off 元旦` or `2027-02-07 work 春节调休`; `#` starts a comment",
                ));
            }
        }
    }
    let year = year.map(|(y, _)| y);
    finish(&at, year, entries, problems, 0)
}

fn bad_date(at: &At, w: &str, offset: usize) -> Problem {
    at.problem(
        "calendar::syntax",
        offset,
        w.len(),
        format!("`{w}` 不是日期"),
        format!("`{w}` is not a date"),
        "日期写成 YYYY-MM-DD，例如 2027-10-01",
        "write dates as YYYY-MM-DD, like 2027-10-01",
    )
}

fn parse_json(text: &str) -> Result<YearArrangement, Vec<Problem>> {
    let at = At { text };
    #[derive(serde::Deserialize)]
    struct Day {
        #[serde(default)]
        name: String,
        date: String,
        #[serde(rename = "isOffDay")]
        is_off_day: bool,
    }
    #[derive(serde::Deserialize)]
    struct File {
        year: Option<i32>,
        #[serde(default)]
        days: Vec<Day>,
    }
    let file: File = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            // serde_json counts lines and columns from 1; turn them into an offset.
            let offset = text
                .split_inclusive('\n')
                .take(e.line().saturating_sub(1))
                .map(str::len)
                .sum::<usize>()
                + e.column().saturating_sub(1);
            return Err(vec![at.problem(
                "calendar::syntax",
                offset,
                1,
                format!("JSON 无法读取：{e}"),
                format!("the JSON cannot be read: {e}"),
                "holiday-cn 格式：{\"year\": 2027, \"days\": [{\"name\": \"元旦\", \"date\": \"2027-01-01\", \"isOffDay\": true}]}",
                "the holiday-cn format: {\"year\": 2027, \"days\": [{\"name\": \"元旦\", \"date\": \"2027-01-01\", \"isOffDay\": true}]}",
            )]);
        }
    };
    // Where each entry's date is written: the n-th `"date"` key holds the
    // n-th entry's date (the format has no other `date` key).
    let mut positions = text.match_indices("\"date\"").map(|(i, _)| {
        let rest = &text[i + 6..];
        rest.find('"').map_or(i, |j| i + 6 + j + 1)
    });
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    for day in &file.days {
        let offset = positions.next().unwrap_or(0);
        match NaiveDate::parse_from_str(&day.date, "%Y-%m-%d") {
            Ok(d) => entries.push(Entry {
                date: d,
                kind: if day.is_off_day {
                    DayKind::Off
                } else {
                    DayKind::Work
                },
                name: day.name.clone(),
                offset,
                len: day.date.len(),
            }),
            Err(_) => problems.push(bad_date(&at, &day.date, offset)),
        }
    }
    let year_offset = text.find("\"year\"").unwrap_or(0);
    finish(&at, file.year, entries, problems, year_offset)
}

fn finish(
    at: &At,
    year: Option<i32>,
    entries: Vec<Entry>,
    mut problems: Vec<Problem>,
    year_offset: usize,
) -> Result<YearArrangement, Vec<Problem>> {
    let Some(year) = year.or_else(|| entries.first().map(|e| e.date.year())) else {
        if problems.is_empty() {
            problems.push(at.problem(
                "calendar::empty_year",
                year_offset,
                0,
                "文件没有列出任何日期：一年的安排至少有元旦等法定节假日".into(),
                "the file lists no dates: a year's arrangement has at least its public holidays".into(),
                "按国务院办公厅当年的放假通知逐日列出放假日（off）和调休上班日（work）",
                "list each day off (off) and make-up working day (work) from the State Council's notice for the year",
            ));
        }
        return Err(problems);
    };
    let mut days = BTreeMap::new();
    let mut seen: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for e in &entries {
        if e.date.year() != year {
            problems.push(at.problem(
                "calendar::not_in_year",
                e.offset,
                e.len,
                format!("{} 不在 {year} 年内", e.date),
                format!("{} is not in {year}", e.date),
                "一个文件只写一年的安排；跨年的日期放到那一年的文件里",
                "a file holds one year's arrangement; put the date in its own year's file",
            ));
            continue;
        }
        if let Some(line) = seen.get(&e.date) {
            problems.push(at.problem(
                "calendar::duplicate",
                e.offset,
                e.len,
                format!("{} 重复列出（第 {line} 行已有）", e.date),
                format!("{} is listed twice (already on line {line})", e.date),
                "每个日期只写一次",
                "list each date once",
            ));
            continue;
        }
        let line = at.text[..e.offset.min(at.text.len())].matches('\n').count() + 1;
        seen.insert(e.date, line);
        if e.kind == DayKind::Work && !matches!(e.date.weekday(), Weekday::Sat | Weekday::Sun) {
            problems.push(at.problem(
                "calendar::workday_not_weekend",
                e.offset,
                e.len,
                format!(
                    "{} 是{}，本来就是工作日：调休上班日只能是周六或周日",
                    e.date,
                    weekday_zh(e.date.weekday())
                ),
                format!(
                    "{} is a {:?}, a working day anyway: a make-up working day (调休) is a Saturday or Sunday",
                    e.date,
                    e.date.weekday()
                ),
                "核对通知原文：是否把放假日误写成 work，或日期抄错",
                "check the notice: is a day off written as `work`, or the date mistyped?",
            ));
            continue;
        }
        days.insert(e.date, (e.kind, e.name.clone()));
    }
    if entries.is_empty() && problems.is_empty() {
        problems.push(at.problem(
            "calendar::empty_year",
            year_offset,
            0,
            format!("{year} 年没有列出任何日期"),
            format!("{year} lists no dates"),
            "按国务院办公厅当年的放假通知逐日列出放假日（off）和调休上班日（work）",
            "list each day off (off) and make-up working day (work) from the State Council's notice for the year",
        ));
    }
    if problems.is_empty() {
        Ok(YearArrangement { year, days })
    } else {
        problems.sort_by_key(|p| p.offset);
        Err(problems)
    }
}

pub fn weekday_zh(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "周一",
        Weekday::Tue => "周二",
        Weekday::Wed => "周三",
        Weekday::Thu => "周四",
        Weekday::Fri => "周五",
        Weekday::Sat => "周六",
        Weekday::Sun => "周日",
    }
}

impl YearArrangement {
    /// The canonical plain text (what a calendar deployment stores).
    pub fn to_text(&self) -> String {
        let mut s = format!("year {}\n", self.year);
        for (d, (k, name)) in &self.days {
            let k = match k {
                DayKind::Off => "off",
                DayKind::Work => "work",
            };
            if name.is_empty() {
                s.push_str(&format!("{d} {k}\n"));
            } else {
                s.push_str(&format!("{d} {k} {name}\n"));
            }
        }
        s
    }

    /// Whether `d` is a working day under this arrangement.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        match self.days.get(&d) {
            Some((DayKind::Off, _)) => false,
            Some((DayKind::Work, _)) => true,
            None => !matches!(d.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// Working days in the year.
    pub fn working_days(&self) -> u32 {
        let Some(first) = NaiveDate::from_ymd_opt(self.year, 1, 1) else {
            return 0;
        };
        first
            .iter_days()
            .take_while(|d| d.year() == self.year)
            .filter(|d| self.is_working_day(*d))
            .count() as u32
    }
}

/// A date whose standing changes from one calendar to another.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DayChange {
    pub date: NaiveDate,
    /// Working day before and after.
    pub was_working: bool,
    pub working: bool,
    /// The names before and after (a holiday's name, `调休`, or empty).
    pub was: String,
    pub now: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &str) -> Vec<(String, usize, usize)> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(ps) => ps
                .into_iter()
                .map(|p| (p.code.to_string(), p.line, p.column))
                .collect(),
        }
    }

    #[test]
    fn plain_text_reads() {
        let y =
            parse("# 2027 测试\nyear 2027\n2027-01-01 off 元旦\n2027-02-07 work 春节调休 # 周日\n")
                .unwrap();
        assert_eq!(y.year, 2027);
        assert_eq!(y.days.len(), 2);
        assert_eq!(
            y.to_text(),
            "year 2027\n2027-01-01 off 元旦\n2027-02-07 work 春节调休\n"
        );
        assert_eq!(parse(&y.to_text()).unwrap(), y);
    }

    #[test]
    fn holiday_cn_json_reads() {
        let text = r#"{"year": 2027, "papers": [], "days": [
  {"name": "元旦", "date": "2027-01-01", "isOffDay": true},
  {"name": "春节", "date": "2027-02-07", "isOffDay": false}
]}"#;
        let y = parse(text).unwrap();
        assert_eq!(y.days.len(), 2);
        assert_eq!(y.days.values().nth(1).map(|v| v.0), Some(DayKind::Work));
        // A weekday as a make-up day, with its line and column.
        let bad = text.replace("2027-02-07", "2027-02-08");
        assert_eq!(
            codes(&bad),
            [("calendar::workday_not_weekend".to_string(), 3, 27)]
        );
    }

    #[test]
    fn every_problem_with_its_place() {
        let text = "year 2027\n2027-01-01 off 元旦\n2026-12-31 off 跨年\n2027-01-01 off 再一次\n2027-02-08 work 周一\nholiday 2027-03-01\n2027-13-01 off 坏日期\n";
        assert_eq!(
            codes(text),
            [
                ("calendar::not_in_year".to_string(), 3, 1),
                ("calendar::duplicate".to_string(), 4, 1),
                ("calendar::workday_not_weekend".to_string(), 5, 1),
                ("calendar::syntax".to_string(), 6, 1),
                ("calendar::syntax".to_string(), 7, 1),
            ]
        );
        assert_eq!(
            codes("# nothing\n"),
            [("calendar::empty_year".to_string(), 1, 1)]
        );
        assert_eq!(
            codes("year 2027\n"),
            [("calendar::empty_year".to_string(), 1, 1)]
        );
        assert_eq!(
            codes("{\"year\": 2027, \"days\": []}"),
            [("calendar::empty_year".to_string(), 1, 2)]
        );
        assert_eq!(
            codes("{\"year\": 2027, \"days\": [")[0].0,
            "calendar::syntax"
        );
    }

    #[test]
    fn a_byte_order_mark_is_ignored_and_year_is_given_once() {
        let y = parse("\u{feff}year 2027\n2027-01-01 off 元旦\n").unwrap();
        assert_eq!(y.days.len(), 1);
        let y = parse("\u{feff}{\"year\": 2027, \"days\": [{\"name\": \"元旦\", \"date\": \"2027-01-01\", \"isOffDay\": true}]}").unwrap();
        assert_eq!(y.days.len(), 1);
        assert_eq!(
            codes("year 2027\nyear 2028\n2027-01-01 off 元旦\n"),
            [("calendar::syntax".to_string(), 2, 6)]
        );
    }

    #[test]
    fn working_days_in_a_year() {
        let y = parse("year 2027\n2027-01-01 off 元旦\n").unwrap();
        // 2027 has 261 weekdays; 元旦 is a Friday.
        assert_eq!(y.working_days(), 260);
    }
}
