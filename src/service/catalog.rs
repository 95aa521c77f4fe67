//! The pipelines of a folder as the service knows them: the last version of each file that
//! loaded, and why the file on disk does not load when it does not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::project::pipeline_files;
use crate::spec::LoadedPipeline;
use crate::steps::Registry;

#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub file: PathBuf,
    /// The file's text when it was last read.
    pub text: String,
    /// The last version of the file that loaded; it stays in use while a later edit is broken.
    pub loaded: Option<LoadedPipeline>,
    /// Why the file as it is now does not load.
    pub error: Option<String>,
}

impl CatalogEntry {
    /// The pipeline's name, or the file's stem when no version of it ever loaded.
    pub fn name(&self) -> String {
        match &self.loaded {
            Some(loaded) => loaded.pipeline.name.clone(),
            None => self
                .file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Files that loaded a new version.
    pub updated: Vec<PathBuf>,
    /// Files whose new text does not load (the last good version stays).
    pub failed: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
}

impl ReloadSummary {
    pub fn is_empty(&self) -> bool {
        self.updated.is_empty() && self.failed.is_empty() && self.removed.is_empty()
    }
}

pub struct Catalog {
    dir: PathBuf,
    entries: BTreeMap<PathBuf, CatalogEntry>,
}

impl Catalog {
    /// Reads every pipeline file of `dir`.
    pub fn load(dir: &Path, registry: &Registry) -> Self {
        let mut catalog = Catalog {
            dir: dir.to_path_buf(),
            entries: BTreeMap::new(),
        };
        catalog.reload(registry);
        catalog
    }

    /// Reads the folder again: new and changed files are loaded; a file that no longer loads
    /// keeps its last good version and records the error; removed files are dropped.
    pub fn reload(&mut self, registry: &Registry) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        let files = pipeline_files(&self.dir);
        let gone: Vec<PathBuf> = self
            .entries
            .keys()
            .filter(|f| !files.contains(f))
            .cloned()
            .collect();
        for file in gone {
            self.entries.remove(&file);
            summary.removed.push(file);
        }
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(error) => {
                    let entry = self.entry(&file);
                    let message = format!("cannot read {}: {error}", file.display());
                    if entry.error.as_deref() != Some(message.as_str()) {
                        entry.error = Some(message);
                        summary.failed.push(file);
                    }
                    continue;
                }
            };
            if self.entries.get(&file).is_some_and(|e| e.text == text) {
                continue;
            }
            let source = crate::spec::source::Source::new(&file, text.clone());
            let result =
                crate::spec::load_source(source, registry, &crate::spec::project_dir(&file));
            let entry = self.entry(&file);
            entry.text = text;
            match result {
                Ok(loaded) => {
                    entry.loaded = Some(loaded);
                    entry.error = None;
                    summary.updated.push(file);
                }
                Err(diagnostics) => {
                    entry.error = Some(diagnostics.render(false));
                    summary.failed.push(file);
                }
            }
        }
        summary
    }

    fn entry(&mut self, file: &Path) -> &mut CatalogEntry {
        self.entries
            .entry(file.to_path_buf())
            .or_insert_with(|| CatalogEntry {
                file: file.to_path_buf(),
                text: String::new(),
                loaded: None,
                error: None,
            })
    }

    pub fn entries(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.values()
    }

    /// The entry of one pipeline file.
    pub fn get(&self, file: &Path) -> Option<&CatalogEntry> {
        self.entries.get(file)
    }

    /// The entry of the pipeline with this name (or, for a file that never loaded, this stem).
    pub fn find(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.values().find(|e| e.name() == name)
    }
}
