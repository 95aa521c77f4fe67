//! Datasets across the plugin boundary: upstream datasets handed to a plugin (the run's Parquet
//! files, or CSV copies of them), and the files a plugin wrote, read back into the run's Parquet
//! datasets so downstream steps see them like any other.

use std::path::{Component, Path, PathBuf};

use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions};
use futures::StreamExt;

use super::manifest::InputFormat;
use super::protocol::{InputColumn, InputDataset, OutputDataset, OutputFormat};
use crate::data::DatasetRef;
use crate::steps::{StepContext, StepError};

/// CSV type inference reads this many rows, so a column that turns from `1` to `1.5` late in
/// a file still reads as a number.
const CSV_INFER_ROWS: usize = 1_000_000;

/// Every dataset of the upstream steps, in the format the kind asks for; CSV copies are written
/// into `csv_dir`.
pub async fn inputs_for(
    ctx: &StepContext,
    format: InputFormat,
    csv_dir: &Path,
) -> Result<Vec<InputDataset>, StepError> {
    let mut inputs = Vec::new();
    for upstream in &ctx.inputs {
        for dataset in &upstream.datasets {
            let parquet = absolute(&dataset.path(&ctx.run_dir));
            let path = match format {
                InputFormat::Parquet => parquet,
                InputFormat::Csv => {
                    let csv = csv_dir.join(format!("{}.csv", dataset.table_name()));
                    parquet_to_csv(&parquet, &csv).await.map_err(|e| {
                        StepError::permanent(format!(
                            "cannot hand `{}` to the plugin as CSV: {e}; columns such as lists and structs have no CSV form (a kind with `inputs.format: parquet` reads them)",
                            dataset.table_name()
                        ))
                    })?;
                    csv
                }
            };
            inputs.push(InputDataset {
                step: dataset.step.clone(),
                name: dataset.name.clone(),
                table: dataset.table_name(),
                path,
                format: format.name().to_string(),
                rows: dataset.rows,
                columns: dataset
                    .columns
                    .iter()
                    .map(|c| InputColumn {
                        name: c.name.clone(),
                        data_type: c.data_type.clone(),
                    })
                    .collect(),
            });
        }
    }
    Ok(inputs)
}

async fn parquet_to_csv(parquet: &Path, csv: &Path) -> Result<(), StepError> {
    let session = crate::data::ordered_session();
    let frame = session
        .read_parquet(
            parquet.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await?;
    let mut stream = frame.execute_stream().await?;
    if let Some(parent) = csv.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::File::create(csv)?;
    let mut writer = WriterBuilder::new().with_header(true).build(file);
    let mut wrote_header = false;
    while let Some(batch) = stream.next().await {
        writer.write(&batch?)?;
        wrote_header = true;
    }
    if !wrote_header {
        // An empty dataset still tells the plugin its columns.
        let names: Vec<String> = stream
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        drop(writer);
        std::fs::write(csv, format!("{}\n", names.join(",")))?;
    }
    Ok(())
}

/// Reads a dataset a plugin wrote and records it as one of the step's datasets.
pub async fn import(
    ctx: &StepContext,
    output_dir: &Path,
    output: &OutputDataset,
    input_types: &[InputColumn],
) -> Result<DatasetRef, StepError> {
    let file = inside(output_dir, &output.file)?;
    let format = output
        .format
        .or_else(|| OutputFormat::from_extension(&output.file))
        .ok_or_else(|| {
            StepError::permanent(format!(
                "the plugin's dataset `{}` is in `{}`, whose format its extension does not tell; name it .parquet, .csv or .ndjson, or add \"format\"",
                output.name, output.file
            ))
        })?;
    let extension = file
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let path = file.to_string_lossy().into_owned();
    let session = crate::data::ordered_session();
    let unreadable = |e: datafusion::error::DataFusionError| {
        StepError::permanent(format!(
            "cannot read the plugin's dataset `{}` ({}, as {format:?}): {e}",
            output.name, output.file
        ))
    };
    // Text formats lose types: read once to infer them, then again with the types fixed.
    let read = |schema: Option<Schema>| {
        let session = &session;
        let path = path.clone();
        let extension = extension.clone();
        async move {
            match format {
                OutputFormat::Parquet => {
                    let options = ParquetReadOptions::default().file_extension(&extension);
                    session.read_parquet(path.as_str(), options).await
                }
                OutputFormat::Csv => {
                    let mut options = CsvReadOptions::new()
                        .has_header(true)
                        .file_extension(&extension)
                        .schema_infer_max_records(CSV_INFER_ROWS);
                    if let Some(schema) = &schema {
                        options = options.schema(schema);
                    }
                    session.read_csv(path.as_str(), options).await
                }
                OutputFormat::Ndjson => {
                    let mut options = JsonReadOptions::default()
                        .file_extension(&extension)
                        .schema_infer_max_records(CSV_INFER_ROWS);
                    if let Some(schema) = &schema {
                        options = options.schema(schema);
                    }
                    session.read_json(path.as_str(), options).await
                }
            }
        }
    };
    let mut frame = read(None).await.map_err(unreadable)?;
    if format != OutputFormat::Parquet {
        let inferred = frame.schema().inner().clone();
        let typed = typed_schema(&inferred, &output.types, input_types).map_err(|why| {
            StepError::permanent(format!(
                "the plugin's dataset `{}` ({}): {why}",
                output.name, output.file
            ))
        })?;
        if typed != *inferred {
            frame = read(Some(typed)).await.map_err(unreadable)?;
        }
    }
    let schema = frame.schema().inner().clone();
    let stream = frame.execute_stream().await.map_err(unreadable)?;
    let mut writer = ctx.dataset_writer(&output.name, schema)?;
    writer.write_stream(stream).await.map_err(|e| {
        StepError::permanent(format!(
            "cannot read the plugin's dataset `{}` ({}): {e}",
            output.name, output.file
        ))
    })?;
    Ok(ctx.finish_dataset(writer)?)
}

/// The schema a CSV or NDJSON result is read with: each column's type from the result's
/// `types`, else from the first input column of that name (so an id like `00042` stays text),
/// else as inferred from the values.
fn typed_schema(
    inferred: &Schema,
    types: &indexmap::IndexMap<String, String>,
    input_types: &[InputColumn],
) -> Result<Schema, String> {
    for name in types.keys() {
        if inferred.field_with_name(name).is_err() {
            return Err(format!(
                "`types` names the column `{name}`, which the file does not have"
            ));
        }
    }
    let fields: Result<Vec<Field>, String> = inferred
        .fields()
        .iter()
        .map(|field| {
            let wanted = match types.get(field.name()) {
                Some(text) => Some(text.parse::<DataType>().map_err(|e| {
                    format!(
                        "`types` gives `{text}` for `{}`, which is not an Arrow type ({e}); use names like Utf8, Int64, Float64, Boolean, Date32",
                        field.name()
                    )
                })?),
                None => input_types
                    .iter()
                    .find(|c| &c.name == field.name())
                    .and_then(|c| c.data_type.parse::<DataType>().ok()),
            };
            Ok(match wanted {
                Some(data_type) => Field::new(field.name(), data_type, true),
                None => field.as_ref().clone(),
            })
        })
        .collect();
    Ok(Schema::new(fields?))
}

/// A file a plugin names in its result: relative to its output folder and inside it, even once
/// symlinks are followed.
fn inside(output_dir: &Path, file: &str) -> Result<PathBuf, StepError> {
    let given = Path::new(file);
    if file.is_empty()
        || given.is_absolute()
        || given
            .components()
            .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(StepError::permanent(format!(
            "the plugin's result names the file `{file}`; dataset files are relative to `output_dir` and inside it"
        )));
    }
    let joined = output_dir.join(given);
    let resolved = joined.canonicalize().map_err(|e| {
        StepError::permanent(format!(
            "the plugin's result names `{file}`, but it is not in the output folder: {e}"
        ))
    })?;
    let dir = output_dir.canonicalize()?;
    if !resolved.starts_with(&dir) || !resolved.is_file() {
        return Err(StepError::permanent(format!(
            "the plugin's result names `{file}`, which is not a file inside the output folder"
        )));
    }
    Ok(resolved)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn text_results_keep_input_types_and_given_types() {
        let inferred = Schema::new(vec![
            Field::new("customer_id", DataType::Int64, true),
            Field::new("score", DataType::Int64, true),
            Field::new("band", DataType::Utf8, true),
        ]);
        let inputs = [InputColumn {
            name: "customer_id".into(),
            data_type: "Utf8".into(),
        }];
        let mut types = indexmap::IndexMap::new();
        types.insert("score".to_string(), "Float64".to_string());
        let typed = typed_schema(&inferred, &types, &inputs).unwrap();
        let got: Vec<(&str, &DataType)> = typed
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(
            got,
            [
                ("customer_id", &DataType::Utf8),
                ("score", &DataType::Float64),
                ("band", &DataType::Utf8)
            ]
        );
        types.insert("nope".to_string(), "Utf8".to_string());
        assert!(
            typed_schema(&inferred, &types, &inputs)
                .unwrap_err()
                .contains("`nope`")
        );
        let mut bad = indexmap::IndexMap::new();
        bad.insert("score".to_string(), "Decimal".to_string());
        assert!(
            typed_schema(&inferred, &bad, &inputs)
                .unwrap_err()
                .contains("not an Arrow type")
        );
    }

    #[test]
    fn result_files_stay_inside_the_output_folder() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("a.csv"), "x\n1\n").unwrap();
        std::fs::write(root.path().join("secret.csv"), "x\n1\n").unwrap();
        symlink(root.path().join("secret.csv"), out.join("link.csv")).unwrap();

        assert!(inside(&out, "a.csv").is_ok());
        for bad in [
            "../secret.csv",
            "/etc/passwd",
            "link.csv",
            "missing.csv",
            "",
        ] {
            let error = inside(&out, bad).expect_err(bad);
            assert!(!error.retryable, "{bad}");
        }
    }
}
