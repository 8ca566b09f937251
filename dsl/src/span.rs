//! Byte-offset spans and the source files they point into.
//!
//! Spans are owned by govflow (not pest's or the YAML parser's) and converted
//! to line/column only when a diagnostic is rendered.

use std::sync::Arc;

/// A byte range in one source file.
///
/// INVARIANT: equality and hashing ignore spans, so that the IR lowered from
/// YAML and from the DSL compares equal whenever the meaning is the same.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}
impl Eq for Span {}
impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// A source file: its name (as given on the command line) and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
    line_starts: Arc<[usize]>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let mut starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        SourceFile {
            name: name.into(),
            text,
            line_starts: starts.into(),
        }
    }

    /// 1-based line and column (columns count characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line + 1, col + 1)
    }

    /// Byte offset of a 1-based line and 1-based character column; clamps.
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        let line_text = rest.split('\n').next().unwrap_or("");
        let mut off = start + line_text.len();
        for (n, (i, _)) in line_text.char_indices().enumerate() {
            if n + 1 == col {
                off = start + i;
                break;
            }
        }
        off
    }

    /// Rounds a byte offset down to a character boundary.
    pub fn floor_char(&self, mut offset: usize) -> usize {
        offset = offset.min(self.text.len());
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }
}

/// Cuts a trailing `// comment` (outside string literals) off an expression line.
pub fn strip_line_comment(s: &str) -> &str {
    let mut in_str: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match in_str {
            Some(q) if c == q && prev != '\\' => in_str = None,
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => in_str = Some(c),
            None if c == '/' && s[i..].starts_with("//") => return &s[..i],
            None => {}
        }
        prev = c;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new("t", "ab\n受理 x\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        // "受理 " is 7 bytes; x is the 4th character of line 2
        assert_eq!(f.line_col(10), (2, 4));
        assert_eq!(f.offset_of(2, 4), 10);
    }

    #[test]
    fn spans_compare_equal() {
        assert_eq!(Span::new(1, 2), Span::new(5, 9));
    }
}
