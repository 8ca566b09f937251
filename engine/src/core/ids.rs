//! Identifiers: applicants' 居民身份证号码 and 统一社会信用代码, and the
//! 办件编号 case-number rule.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("身份证号码 `{0}` must be 18 characters: 17 digits and a check character (0-9 or X)")]
    IdCardShape(String),
    #[error(
        "身份证号码 `{given}` has check character `{found}`, but its first 17 digits give `{expected}` (GB 11643, ISO 7064 MOD 11-2); check for a mistyped digit"
    )]
    IdCardCheck {
        given: String,
        found: char,
        expected: char,
    },
    #[error(
        "身份证号码 `{given}`: `{digits}` is not a real birth date (positions 7-14 are YYYYMMDD)"
    )]
    IdCardBirth { given: String, digits: String },
    #[error("身份证号码 `{given}`: region code `{region}` is not a province-level code")]
    IdCardRegion { given: String, region: String },
    #[error("统一社会信用代码 `{0}` must be 18 characters from 0-9 and A-Y without I, O, S, V, Z")]
    CreditCodeShape(String),
    #[error(
        "统一社会信用代码 `{given}` has check character `{found}`, but its first 17 characters give `{expected}` (GB 32100); for a known legacy code set `legacy: true`"
    )]
    CreditCodeCheck {
        given: String,
        found: char,
        expected: char,
    },
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// ISO 7064 MOD 11-2 check character over 17 digits (as in GB 11643).
pub fn mod11_2(digits: &[u8]) -> Option<char> {
    if digits.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in digits.iter().zip(ID_WEIGHTS) {
        let d = (*b as char).to_digit(10)?;
        sum += d * w;
    }
    Some(ID_CHECK[(sum % 11) as usize] as char)
}

/// ISO 7064 MOD 11-2 over any number of digits (the pure system; over 17
/// digits it gives the same character as `mod11_2`).
pub fn mod11_2_any(digits: &[u8]) -> Option<char> {
    let mut p = 0u32;
    for b in digits {
        let d = (*b as char).to_digit(10)?;
        p = ((p + d) * 2) % 11;
    }
    let c = (12 - p % 11) % 11;
    Some(if c == 10 {
        'X'
    } else {
        char::from_digit(c, 10)?
    })
}

const PROVINCES: &[u32] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91,
];

/// Validates an 18-digit 居民身份证号码: shape, province, birth date (a real
/// date, not after `today`, not before 1900) and check character. Returns the
/// birth date.
pub fn check_id_card(id: &str, today: NaiveDate) -> Result<NaiveDate, IdError> {
    let b = id.as_bytes();
    let shape_ok = b.len() == 18
        && b[..17].iter().all(u8::is_ascii_digit)
        && (b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x');
    if !shape_ok {
        return Err(IdError::IdCardShape(id.to_string()));
    }
    let region = &id[..6];
    let province: u32 = id[..2].parse().unwrap_or(0);
    if !PROVINCES.contains(&province) {
        return Err(IdError::IdCardRegion {
            given: id.to_string(),
            region: region.to_string(),
        });
    }
    let digits = &id[6..14];
    let birth = NaiveDate::parse_from_str(digits, "%Y%m%d")
        .ok()
        .filter(|d| d.year() >= 1900 && *d <= today)
        .ok_or_else(|| IdError::IdCardBirth {
            given: id.to_string(),
            digits: digits.to_string(),
        })?;
    let expected = mod11_2(&b[..17]).ok_or_else(|| IdError::IdCardShape(id.to_string()))?;
    let found = (b[17] as char).to_ascii_uppercase();
    if found != expected {
        return Err(IdError::IdCardCheck {
            given: id.to_string(),
            found,
            expected,
        });
    }
    Ok(birth)
}

const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The GB 32100 check character of the first 17 characters of a code.
pub fn uscc_check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.iter().zip(USCC_WEIGHTS) {
        let v = USCC_CHARS.iter().position(|x| x == c)? as u32;
        sum += v * w;
    }
    let r = (31 - sum % 31) % 31;
    Some(USCC_CHARS[r as usize] as char)
}

/// Validates an 18-character 统一社会信用代码. `legacy` accepts a code whose
/// check character is wrong (known legacy registrations) but still requires
/// the shape.
pub fn check_credit_code(code: &str, legacy: bool) -> Result<(), IdError> {
    let b = code.as_bytes();
    if b.len() != 18 || !b.iter().all(|c| USCC_CHARS.contains(c)) {
        return Err(IdError::CreditCodeShape(code.to_string()));
    }
    let expected =
        uscc_check_char(&b[..17]).ok_or_else(|| IdError::CreditCodeShape(code.to_string()))?;
    let found = b[17] as char;
    if found != expected && !legacy {
        return Err(IdError::CreditCodeCheck {
            given: code.to_string(),
            found,
            expected,
        });
    }
    Ok(())
}

/// The kinds of applicant identifiers the engine validates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// 居民身份证 (natural person).
    IdCard,
    /// 统一社会信用代码 (legal person or other organisation).
    CreditCode,
}

impl IdKind {
    pub fn label(self) -> &'static str {
        match self {
            IdKind::IdCard => "身份证",
            IdKind::CreditCode => "统一社会信用代码",
        }
    }
}

/// 办件编号: `RRRRRR YYYYMMDD NNNNNNN C` without spaces, 22 characters.
///
/// - `RRRRRR`: the 6-digit administrative division code of the handling body;
/// - `YYYYMMDD`: the date the case was registered (China Standard Time);
/// - `NNNNNNN`: the 7-digit sequence of that division and day, from 0000001,
///   handed out by the database in the registering transaction;
/// - `C`: an ISO 7064 MOD 11-2 check character over all 21 digits before
///   it, catching any single mistyped digit and most swapped pairs.
///
/// Numbers sort by division, then date, then order of registration.
pub fn case_number(region: &str, date: NaiveDate, seq: u64) -> Option<String> {
    if region.len() != 6
        || !region.bytes().all(|b| b.is_ascii_digit())
        || seq == 0
        || seq > 9_999_999
    {
        return None;
    }
    let body = format!("{region}{}{seq:07}", date.format("%Y%m%d"));
    let check = mod11_2_any(body.as_bytes())?;
    Some(format!("{body}{check}"))
}

/// Checks a case number's shape and check character.
pub fn is_case_number(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 22
        && b[..21].iter().all(u8::is_ascii_digit)
        && mod11_2_any(&b[..21]) == Some(b[21] as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
    }

    #[test]
    fn id_cards() {
        // The GB 11643 standard's own example.
        assert!(check_id_card("11010519491231002X", today()).is_ok());
        assert!(check_id_card("11010519491231002x", today()).is_ok());
        let e = check_id_card("110105194912310021", today()).unwrap_err();
        assert!(
            matches!(e, IdError::IdCardCheck { expected: 'X', .. }),
            "{e}"
        );
        let e = check_id_card("110105194902300021", today()).unwrap_err();
        assert!(matches!(e, IdError::IdCardBirth { .. }), "{e}");
        let e = check_id_card("990105194912310021", today()).unwrap_err();
        assert!(matches!(e, IdError::IdCardRegion { .. }), "{e}");
        assert!(matches!(
            check_id_card("1101051949123100", today()),
            Err(IdError::IdCardShape(_))
        ));
        // A birth date after today.
        let mut future = b"11010520300101001".to_vec();
        let c = mod11_2(&future).unwrap();
        future.push(c as u8);
        let e = check_id_card(std::str::from_utf8(&future).unwrap(), today()).unwrap_err();
        assert!(matches!(e, IdError::IdCardBirth { .. }), "{e}");
    }

    #[test]
    fn credit_codes() {
        // Published codes of real organisations.
        assert!(check_credit_code("91110000600037341L", false).is_ok());
        assert!(check_credit_code("91350100M000100Y43", false).is_ok());
        let e = check_credit_code("91350100M000100Y44", false).unwrap_err();
        assert!(
            matches!(e, IdError::CreditCodeCheck { expected: '3', .. }),
            "{e}"
        );
        assert!(check_credit_code("91350100M000100Y44", true).is_ok());
        assert!(matches!(
            check_credit_code("91350100M000100YI3", true),
            Err(IdError::CreditCodeShape(_))
        ));
    }

    #[test]
    fn mod11_2_agrees_with_gb11643() {
        for id in ["11010519491231002X", "110105194912310021"] {
            let b = id.as_bytes();
            assert_eq!(mod11_2_any(&b[..17]), mod11_2(&b[..17]));
        }
        assert_eq!(mod11_2_any(b"11010519491231002"), Some('X'));
    }

    #[test]
    fn case_numbers_sort_and_check() {
        let d1 = NaiveDate::from_ymd_opt(2025, 9, 26).unwrap();
        let d2 = NaiveDate::from_ymd_opt(2025, 9, 27).unwrap();
        let a = case_number("330106", d1, 1).unwrap();
        let b = case_number("330106", d1, 2).unwrap();
        let c = case_number("330106", d2, 1).unwrap();
        assert_eq!(a.len(), 22);
        assert!(a < b && b < c);
        assert!(is_case_number(&a) && is_case_number(&c));
        // Any single mistyped digit is caught, the division code's included.
        for i in 0..21 {
            let mut bad = a.clone().into_bytes();
            bad[i] = if bad[i] == b'1' { b'2' } else { b'1' };
            assert!(
                !is_case_number(std::str::from_utf8(&bad).unwrap()),
                "digit {i}"
            );
        }
        assert!(case_number("33010", d1, 1).is_none());
        assert!(case_number("330106", d1, 10_000_000).is_none());
    }
}
