//! Helpers for plugin tests: plugin folders in a test project, the shipped example plugins, and
//! reading a step's dataset back from the run folder.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use datafusion::arrow::util::display::array_value_to_string;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::Project;

/// The repository's own folder (for the shipped plugins, pipelines and data).
pub fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Copies a folder of the repository into the project, keeping file modes (executables).
pub fn copy_from_repo(project: &Project, relative: &str) {
    copy_tree(&repo(relative), &project.path(relative));
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_file() {
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("parent folder");
        std::fs::copy(from, to).expect("copy a file");
        return;
    }
    std::fs::create_dir_all(to).expect("a folder");
    for entry in std::fs::read_dir(from).expect("read a folder") {
        let entry = entry.expect("an entry");
        copy_tree(&entry.path(), &to.join(entry.file_name()));
    }
}

/// Writes `plugins/NAME/plugin.yaml` and an executable `plugins/NAME/FILE`.
pub fn write_plugin(project: &Project, name: &str, manifest: &str, file: &str, script: &str) {
    project.write(format!("plugins/{name}/plugin.yaml"), manifest);
    let path = project.write(format!("plugins/{name}/{file}"), script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make the script executable");
}

/// A dataset read back from its Parquet file: column names and every row as text.
#[derive(Debug)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The values of one column.
    pub fn column(&self, name: &str) -> Vec<&str> {
        let at = self
            .columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column `{name}` in {:?}", self.columns));
        self.rows.iter().map(|r| r[at].as_str()).collect()
    }
}

/// The dataset `name` of `step` in a run, from `runs show --json` and the run folder.
pub fn read_dataset(project: &Project, shown: &Value, step: &str, name: &str) -> Table {
    let record = super::step(shown, step);
    let dataset = record["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("step {step} has no dataset {name}: {record:#}"));
    let run_id = shown["id"].as_str().expect("run id");
    let file = project
        .path(".segflow/runs")
        .join(run_id)
        .join(dataset["file"].as_str().expect("file"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&file).expect("the dataset file"),
    )
    .expect("a Parquet file")
    .build()
    .expect("a reader");
    let mut table = Table {
        columns: Vec::new(),
        rows: Vec::new(),
    };
    for batch in reader {
        let batch = batch.expect("a batch");
        table.columns = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for row in 0..batch.num_rows() {
            table.rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| array_value_to_string(c, row).expect("a value"))
                    .collect(),
            );
        }
    }
    table
}
