//! A pipeline file's text, kept so diagnostics can show the offending line.

use std::path::{Path, PathBuf};

/// A position in a source file: 1-based line and column, and how many characters to underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub line: usize,
    pub column: usize,
    pub len: usize,
}

impl Span {
    pub fn new(line: usize, column: usize, len: usize) -> Self {
        Span {
            line: line.max(1),
            column: column.max(1),
            len: len.max(1),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }

    pub fn read(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Ok(Source::new(path, text))
    }

    /// The text of a 1-based line, without its line break. Lines end as YAML says they do:
    /// `\n`, `\r\n` or a lone `\r`.
    pub fn line(&self, line: usize) -> Option<&str> {
        self.lines().nth(line.checked_sub(1)?)
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        let mut rest = self.text.as_str();
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            match rest.find(['\n', '\r']) {
                Some(i) => {
                    let line = &rest[..i];
                    let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                    rest = &rest[i + skip..];
                    Some(line)
                }
                None => {
                    done = true;
                    Some(rest)
                }
            }
        })
    }

    /// A span moved inside the text: parsers report errors at the end of the file one line
    /// past the last.
    pub fn clamp(&self, span: Span) -> Span {
        let count = self.lines().count().max(1);
        if span.line <= count {
            return span;
        }
        let last = self.line(count).unwrap_or_default();
        Span::new(count, last.chars().count() + 1, 1)
    }
}
