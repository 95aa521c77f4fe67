//! Where a project's state lives: `.segflow/` beside the pipelines, unless told otherwise.

use std::path::{Path, PathBuf};

pub const STATE_DIR_NAME: &str = ".segflow";

/// The state folder: the explicit one (`--state-dir` / `SEGFLOW_HOME`), else `.segflow` in the
/// pipeline's project folder, else the nearest `.segflow` above the working folder, else
/// `./.segflow`.
pub fn state_dir(explicit: Option<&Path>, pipeline_file: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let Some(file) = pipeline_file {
        return crate::spec::project_dir(file).join(STATE_DIR_NAME);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .map(|dir| dir.join(STATE_DIR_NAME))
        .find(|candidate| candidate.is_dir())
        .unwrap_or_else(|| cwd.join(STATE_DIR_NAME))
}

/// The project folder around the working folder: the nearest one holding `pipelines/` or
/// `plugins/`, else the working folder itself.
pub fn current_project_dir() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .find(|dir| dir.join("pipelines").is_dir() || dir.join("plugins").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or(cwd)
}

/// A pipeline given by path, or by name (looked up as `pipelines/NAME.yaml` or `.yml`).
pub fn find_pipeline(given: &str) -> Result<PathBuf, String> {
    let path = Path::new(given);
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    for candidate in [
        format!("pipelines/{given}.yaml"),
        format!("pipelines/{given}.yml"),
        format!("{given}.yaml"),
    ] {
        if Path::new(&candidate).is_file() {
            return Ok(PathBuf::from(candidate));
        }
    }
    let known: Vec<String> = pipeline_files(Path::new("pipelines"))
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let hint = crate::spec::suggest::hint(given, known.iter().map(String::as_str))
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    Err(format!(
        "no pipeline `{given}`: not a file, and not in pipelines/{hint}"
    ))
}

/// The `.yaml`/`.yml` files of a folder, sorted.
pub fn pipeline_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}
