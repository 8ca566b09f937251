//! A small YAML printer for JSON values: block maps and lists, plain scalars
//! where YAML reads them back unchanged, double-quoted JSON strings otherwise.

use serde_json::Value;

pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        _ => return None,
    })
}

fn string(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with([
            ' ', '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"',
            '%', '@', '`',
        ])
        && !s.ends_with(' ')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains('\n')
        && !s.contains('\t')
        && !s.ends_with(':')
        && !matches!(
            s,
            "true"
                | "false"
                | "null"
                | "yes"
                | "no"
                | "on"
                | "off"
                | "~"
                | "True"
                | "False"
                | "Null"
                | "NULL"
                | "Yes"
                | "No"
        )
        && s.parse::<f64>().is_err()
        && !s.chars().next().is_some_and(|c| c.is_ascii_digit());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn key(k: &str) -> String {
    string(k)
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn write_value(out: &mut String, v: &Value, level: usize, in_list: bool) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (i, (k, val)) in o.iter().enumerate() {
                if !(in_list && i == 0) {
                    indent(out, level);
                }
                out.push_str(&key(k));
                out.push(':');
                match scalar(val) {
                    Some(s) => {
                        out.push(' ');
                        out.push_str(&s);
                        out.push('\n');
                    }
                    None => {
                        out.push('\n');
                        let child = if matches!(val, Value::Array(_)) {
                            level
                        } else {
                            level + 2
                        };
                        write_value(out, val, child, false);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                indent(out, level);
                out.push_str("- ");
                match scalar(item) {
                    Some(s) => {
                        out.push_str(&s);
                        out.push('\n');
                    }
                    None => write_value(out, item, level + 2, true),
                }
            }
        }
        other => {
            if let Some(s) = scalar(other) {
                indent(out, level);
                out.push_str(&s);
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_nested_values() {
        let v = serde_json::json!({
            "a": "plain 中文",
            "b": ["x: y", 3, {"k": "v", "l": [1, 2]}],
            "c": {"d": "2025-01-01", "e": ""},
        });
        insta::assert_snapshot!(to_yaml(&v), @r#"
        a: plain 中文
        b:
        - "x: y"
        - 3
        - k: v
          l:
          - 1
          - 2
        c:
          d: "2025-01-01"
          e: ""
        "#);
    }
}
