//! User-facing problems in a pipeline file, each pointing at the line that causes it.
//!
//! Rendered the way rustc and just do it:
//!
//! ```text
//! error: unknown step kind `gather.cvs`
//!   --> pipelines/weekly.yaml:12:11
//!    |
//! 12 |     uses: gather.cvs
//!    |           ^^^^^^^^^^
//!    = help: did you mean `gather.csv`?
//! ```

use std::fmt::Write as _;

use serde::Serialize;

use super::locate::SourceMap;
use super::source::{Source, Span};
use super::yaml_path::YamlPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Where in the document, as a path (`steps[2].needs[0]`).
    pub path: Option<String>,
    #[serde(skip)]
    pub span: Option<Span>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            path: None,
            span: None,
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint.or(self.hint);
        self
    }

    pub fn at(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic with the offending line of `source` and a caret under the culprit.
    pub fn render(&self, source: &Source, color: bool) -> String {
        let paint = Paint { on: color };
        let mut out = String::new();
        let (label, style) = match self.severity {
            Severity::Error => ("error", RED),
            Severity::Warning => ("warning", YELLOW),
        };
        let _ = writeln!(
            out,
            "{}{}",
            paint.wrap(&format!("{label}:"), style),
            paint.wrap(&format!(" {}", self.message), BOLD)
        );
        let location = match self.span {
            Some(span) => format!("{}:{}:{}", source.path.display(), span.line, span.column),
            None => source.path.display().to_string(),
        };
        let gutter_width = self.span.map_or(1, |s| s.line.to_string().len());
        let pad = " ".repeat(gutter_width);
        let _ = writeln!(out, "{pad}{} {location}", paint.wrap("-->", BLUE));
        if let Some(span) = self.span
            && let Some(line) = source.line(span.line)
        {
            let bar = paint.wrap("|", BLUE);
            let _ = writeln!(out, "{pad} {bar}");
            let _ = writeln!(
                out,
                "{} {bar} {line}",
                paint.wrap(&span.line.to_string(), BLUE)
            );
            let indent: String = line
                .chars()
                .take(span.column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let carets = "^".repeat(span.len);
            let _ = writeln!(out, "{pad} {bar} {indent}{}", paint.wrap(&carets, style));
        }
        if let Some(path) = &self.path
            && self.span.is_none()
        {
            let _ = writeln!(out, "{pad} {} at `{path}`", paint.wrap("=", BLUE));
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{pad} {} help: {hint}", paint.wrap("=", BLUE));
        }
        out
    }
}

/// Collects the diagnostics of one file, resolving document paths to positions as they are added.
pub struct Diagnostics<'a> {
    map: &'a SourceMap,
    pub items: Vec<Diagnostic>,
}

/// Which part of a mapping entry to point at.
#[derive(Debug, Clone, Copy)]
pub enum Anchor {
    Key,
    Value,
}

impl<'a> Diagnostics<'a> {
    pub fn new(map: &'a SourceMap) -> Self {
        Diagnostics {
            map,
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, diagnostic: Diagnostic, path: &YamlPath, anchor: Anchor) {
        let span = match anchor {
            Anchor::Key => self.map.key_span(path),
            Anchor::Value => self.map.value_span(path),
        };
        let mut diagnostic = diagnostic;
        if diagnostic.span.is_none() {
            diagnostic.span = span;
        }
        if !path.is_empty() {
            diagnostic.path = Some(path.to_string());
        }
        self.items.push(diagnostic);
    }

    pub fn error(&mut self, path: &YamlPath, message: impl Into<String>, hint: Option<String>) {
        self.push(
            Diagnostic::error(message).with_hint_opt(hint),
            path,
            Anchor::Value,
        );
    }

    pub fn error_at_key(
        &mut self,
        path: &YamlPath,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.push(
            Diagnostic::error(message).with_hint_opt(hint),
            path,
            Anchor::Key,
        );
    }

    pub fn warning(&mut self, path: &YamlPath, message: impl Into<String>, hint: Option<String>) {
        self.push(
            Diagnostic::warning(message).with_hint_opt(hint),
            path,
            Anchor::Value,
        );
    }

    pub fn map(&self) -> &SourceMap {
        self.map
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }
}

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const BLUE: &str = "\x1b[1;34m";
const BOLD: &str = "\x1b[1m";

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, text: &str, style: &str) -> String {
        if self.on {
            format!("{style}{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_and_caret() {
        let source = Source::new(
            "p.yaml",
            "name: x\nsteps:\n  - id: a\n    uses: gather.cvs\n",
        );
        let rendered = Diagnostic::error("unknown step kind `gather.cvs`")
            .with_hint("did you mean `gather.csv`?")
            .at(Some(Span::new(4, 11, 10)))
            .render(&source, false);
        assert_eq!(
            rendered,
            "error: unknown step kind `gather.cvs`\n --> p.yaml:4:11\n  |\n4 |     uses: gather.cvs\n  |           ^^^^^^^^^^\n  = help: did you mean `gather.csv`?\n"
        );
    }
}
