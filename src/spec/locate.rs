//! Where each node of a YAML document sits in the text.
//!
//! serde_yaml gives positions only for syntax errors, so the document is parsed a second time with
//! yaml-rust2's marked events to map every path (`steps[1].needs[0]`) to its line and column.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::source::Span;
use super::yaml_path::YamlPath;

#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    values: HashMap<YamlPath, Span>,
    keys: HashMap<YamlPath, Span>,
}

impl SourceMap {
    /// Builds the map; a document yaml-rust2 cannot read gives an empty map (diagnostics then lose
    /// their position, never their message).
    pub fn build(text: &str) -> Self {
        let mut builder = Builder {
            lines: super::source::Source::new("", text)
                .lines()
                .map(|l| l.chars().count())
                .collect(),
            ..Builder::default()
        };
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return SourceMap::default();
        }
        builder.map
    }

    /// The span of the value at `path`, or of its closest ancestor that has one.
    pub fn value_span(&self, path: &YamlPath) -> Option<Span> {
        let mut current = Some(path.clone());
        while let Some(p) = current {
            if let Some(span) = self.values.get(&p) {
                return Some(*span);
            }
            current = p.parent();
        }
        None
    }

    /// The span of the key that introduces `path`, falling back to the value span.
    pub fn key_span(&self, path: &YamlPath) -> Option<Span> {
        self.keys
            .get(path)
            .copied()
            .or_else(|| self.value_span(path))
    }
}

enum Frame {
    Mapping { path: YamlPath, key: Option<String> },
    Sequence { path: YamlPath, next: usize },
}

#[derive(Default)]
struct Builder {
    map: SourceMap,
    stack: Vec<Frame>,
    /// Characters per line, to keep underlines inside their line.
    lines: Vec<usize>,
}

impl Builder {
    fn span(&self, mark: Marker, len: usize) -> Span {
        // yaml-rust2 counts a few more characters as line breaks than serde_yaml and the
        // diagnostics do (YAML 1.1's NEL and friends): keep positions inside the text.
        let line = mark.line().clamp(1, self.lines.len().max(1));
        let line_len = self.lines.get(line - 1).copied().unwrap_or(0);
        let column = (mark.col() + 1).min(line_len + 1);
        let room = line_len.saturating_sub(column - 1);
        Span::new(line, column, len.min(room.max(1)))
    }

    /// The path the next node gets, or `None` when the next node is a mapping key.
    fn next_path(&self) -> Option<YamlPath> {
        match self.stack.last() {
            None => Some(YamlPath::root()),
            Some(Frame::Mapping { key: None, .. }) => None,
            Some(Frame::Mapping {
                path,
                key: Some(key),
            }) => Some(path.key(key.clone())),
            Some(Frame::Sequence { path, next }) => Some(path.index(*next)),
        }
    }

    /// Marks the current node as finished in its parent.
    fn finish_node(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Mapping { key, .. }) => *key = None,
            Some(Frame::Sequence { next, .. }) => *next += 1,
            None => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, style, ..) => {
                let quotes = match style {
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => 2,
                    _ => 0,
                };
                let len = value.chars().count() + quotes;
                match self.next_path() {
                    Some(path) => {
                        let span = self.span(mark, len);
                        self.map.values.insert(path, span);
                        self.finish_node();
                    }
                    None => {
                        let span = self.span(mark, len);
                        if let Some(Frame::Mapping { path, key }) = self.stack.last_mut() {
                            let full = path.key(value.clone());
                            self.map.keys.insert(full, span);
                            *key = Some(value);
                        }
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_mapping = matches!(event, Event::MappingStart(..));
                // A complex (non-scalar) key gets a placeholder name; nobody writes them in pipelines.
                let path = self.next_path().unwrap_or_else(|| {
                    if let Some(Frame::Mapping { key, path }) = self.stack.last_mut() {
                        *key = Some("?".into());
                        return path.key("?");
                    }
                    YamlPath::root()
                });
                let span = self.span(mark, 1);
                self.map.values.entry(path.clone()).or_insert(span);
                self.stack.push(if is_mapping {
                    Frame::Mapping { path, key: None }
                } else {
                    Frame::Sequence { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.finish_node();
            }
            Event::Alias(_) => {
                if let Some(path) = self.next_path() {
                    let span = self.span(mark, 1);
                    self.map.values.insert(path, span);
                }
                self.finish_node();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_nested_paths_to_positions() {
        let text = "name: x\nsteps:\n  - id: a\n    needs: [b, c]\n    with: { path: \"d.csv\" }\n";
        let map = SourceMap::build(text);
        let root = YamlPath::root();
        let needs1 = root.key("steps").index(0).key("needs").index(1);
        assert_eq!(map.value_span(&needs1), Some(Span::new(4, 16, 1)));
        let path = root.key("steps").index(0).key("with").key("path");
        assert_eq!(map.value_span(&path), Some(Span::new(5, 19, 7)));
        assert_eq!(
            map.key_span(&root.key("steps").index(0).key("needs")),
            Some(Span::new(4, 5, 5))
        );
        // A path that is not in the document falls back to its nearest ancestor.
        let missing = root.key("steps").index(0).key("with").key("nope");
        assert_eq!(
            map.value_span(&missing),
            map.value_span(&path.parent().unwrap())
        );
    }
}
