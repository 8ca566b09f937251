//! The provisional rule for years no official arrangement covers yet.
//!
//! 《全国年节及纪念日放假办法》 (as amended by State Council decree 795, in force
//! since 2025-01-01), art. 2, fixes the public holidays of every year:
//! 元旦 1 January (1 day); 春节 除夕 to 正月初三 (4 days); 清明节 the day of the
//! solar term (1 day); 劳动节 1–2 May (2 days); 端午节 五月初五 (1 day); 中秋节
//! 八月十五 (1 day); 国庆节 1–3 October (3 days).
//!
//! Which weekend days are swapped for make-up working days (调休), and whether a
//! holiday that falls on a weekend is made up on a weekday, only the annual
//! notice of the State Council's General Office says. The provisional rule
//! therefore takes weekends off, these holidays off, and nothing else: it is
//! never presented as the official arrangement (deadlines computed with it
//! are marked `provisional`).

use chinese_lunisolar_calendar::LunisolarDate;
use chrono::NaiveDate;

/// The first and last solar years the lunar tables cover.
pub const LUNAR_YEARS: (i32, i32) = (1902, 2099);

/// The statutory holidays of `year`, in date order, with their names.
/// Empty for a year outside [`LUNAR_YEARS`] (the lunar dates are unknown).
pub fn holidays(year: i32) -> Vec<(NaiveDate, &'static str)> {
    if year < LUNAR_YEARS.0 || year > LUNAR_YEARS.1 {
        return Vec::new();
    }
    let ymd = |m: u32, d: u32| NaiveDate::from_ymd_opt(year, m, d);
    let lunar = |m: u8, d: u8| {
        u16::try_from(year)
            .ok()
            .and_then(|y| LunisolarDate::from_ymd(y, m, false, d).ok())
            .map(LunisolarDate::to_naive_date)
    };
    let mut out: Vec<(NaiveDate, &'static str)> = Vec::new();
    let mut push = |d: Option<NaiveDate>, name: &'static str| {
        if let Some(d) = d
            && chrono::Datelike::year(&d) == year
        {
            out.push((d, name));
        }
    };
    push(ymd(1, 1), "元旦");
    if let Some(new_year) = lunar(1, 1) {
        // 除夕 is the last day of the lunar year before: the eve of 正月初一.
        push(new_year.pred_opt(), "春节");
        for i in 0..3 {
            push(new_year.checked_add_days(chrono::Days::new(i)), "春节");
        }
    }
    push(qingming(year), "清明节");
    push(ymd(5, 1), "劳动节");
    push(ymd(5, 2), "劳动节");
    push(lunar(5, 5), "端午节");
    push(lunar(8, 15), "中秋节");
    for d in 1..=3 {
        push(ymd(10, d), "国庆节");
    }
    out.sort();
    out.dedup_by_key(|(d, _)| *d);
    out
}

/// The day of the solar term 清明 (the sun at 15° ecliptic longitude), in
/// China Standard Time, for 2001–2099: ⌊Y·0.2422 + 4.81⌋ − ⌊Y/4⌋ April, Y the
/// year's last two digits (the 寿星 formula; checked against the official
/// dates in the tests below).
fn qingming(year: i32) -> Option<NaiveDate> {
    if !(2001..=2099).contains(&year) {
        return None;
    }
    let y = f64::from(year % 100);
    let day = (y * 0.2422 + 4.81).floor() as i32 - (year % 100) / 4;
    NaiveDate::from_ymd_opt(year, 4, u32::try_from(day).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_holidays_of_2027_are_computed() {
        let h = holidays(2027);
        let dates: Vec<String> = h.iter().map(|(d, n)| format!("{d} {n}")).collect();
        // 2027: 春节 is 2027-02-06 (除夕 02-05), 清明 04-05, 端午 06-09, 中秋 09-15.
        assert_eq!(
            dates,
            [
                "2027-01-01 元旦",
                "2027-02-05 春节",
                "2027-02-06 春节",
                "2027-02-07 春节",
                "2027-02-08 春节",
                "2027-04-05 清明节",
                "2027-05-01 劳动节",
                "2027-05-02 劳动节",
                "2027-06-09 端午节",
                "2027-09-15 中秋节",
                "2027-10-01 国庆节",
                "2027-10-02 国庆节",
                "2027-10-03 国庆节",
            ]
        );
        assert_eq!(h.len(), 13, "the 2024 amendment gives 13 days a year");
    }

    #[test]
    fn qingming_matches_the_official_notices() {
        // From the State Council notices (engine/calendar/cn.txt) and the
        // published solar terms.
        for (y, day) in [
            (2024, "2024-04-04"),
            (2025, "2025-04-04"),
            (2026, "2026-04-05"),
            (2027, "2027-04-05"),
            (2028, "2028-04-04"),
        ] {
            assert_eq!(qingming(y), Some(d(day)), "{y}");
        }
    }

    #[test]
    fn outside_the_lunar_tables_nothing_is_guessed() {
        assert!(holidays(2100).is_empty());
        assert!(holidays(1800).is_empty());
    }
}
