//! Which files a gatherer reads: one path or a glob, relative to the project folder, with clear
//! errors for what is missing or empty.

use std::path::{Path, PathBuf};

use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::{StepContext, StepError};

/// A file to read, and how to name it to the user.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Relative to the project folder when it is inside it.
    pub name: String,
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The files `pattern` names, in sorted order; none, or an empty one, is an error.
pub fn resolve(ctx: &StepContext, pattern: &str) -> Result<Vec<SourceFile>, StepError> {
    let full = ctx.resolve_path(pattern);
    let name_of = |path: &Path| {
        path.strip_prefix(&ctx.base_dir)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let files = if is_glob(pattern) {
        let matches = glob::glob(&full.to_string_lossy()).map_err(|e| {
            StepError::permanent(format!("`path: {pattern}` is not a valid glob: {e}"))
        })?;
        let mut files: Vec<PathBuf> = matches
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(StepError::permanent(format!(
                "no file matches `{pattern}` (looked in {})",
                full.parent().unwrap_or(&full).display()
            )));
        }
        files
    } else {
        if full.is_dir() {
            return Err(StepError::permanent(format!(
                "`{pattern}` is a folder; to read every file in it, write a glob like `{}/*.csv`",
                pattern.trim_end_matches('/')
            )));
        }
        if !full.is_file() {
            return Err(StepError::permanent(format!(
                "`{pattern}` does not exist (looked for {})",
                full.display()
            )));
        }
        vec![full]
    };
    files
        .into_iter()
        .map(|path| {
            let name = name_of(&path);
            let size = std::fs::metadata(&path)
                .map_err(|e| StepError::permanent(format!("cannot read `{name}`: {e}")))?
                .len();
            if size == 0 {
                return Err(StepError::permanent(format!(
                    "`{name}` is empty: it has no header and no rows"
                )));
            }
            Ok(SourceFile { path, name })
        })
        .collect()
}

/// The first file a path or glob names, for checks before the run (`None` when there is none
/// yet: the run reports that).
pub fn first_match(base_dir: &Path, pattern: &str) -> Option<SourceFile> {
    let full = base_dir.join(pattern);
    let path = if is_glob(pattern) {
        let mut files: Vec<PathBuf> = glob::glob(&full.to_string_lossy())
            .ok()?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files.into_iter().next()?
    } else {
        full.is_file().then_some(full)?
    };
    let name = path
        .strip_prefix(base_dir)
        .unwrap_or(&path)
        .display()
        .to_string();
    Some(SourceFile { path, name })
}

/// Validate-time check of a path or glob: the pattern must be a valid glob.
pub fn check_pattern(pattern: &str) -> Vec<FieldError> {
    if is_glob(pattern)
        && let Err(e) = glob::Pattern::new(pattern)
    {
        return vec![FieldError {
            path: YamlPath::root().key("path"),
            message: format!("not a valid glob: {e}"),
            hint: Some("use `*` for any name, `?` for one character, `[abc]` for a set".into()),
            at_key: false,
        }];
    }
    Vec::new()
}
