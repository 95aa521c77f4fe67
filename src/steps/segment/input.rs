//! What the segment steps share about their input: which table they read, checking the columns
//! they name (before the run when the columns are known, and again when it runs), and reading
//! columns out of Arrow batches.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Schema, SchemaRef};

use crate::data::Column;
use crate::spec::deserialize::FieldError;
use crate::spec::suggest;
use crate::spec::yaml_path::YamlPath;
use crate::steps::{CheckContext, StepContext, StepError};

/// Checks `input` against `needs` before the run.
pub fn check_input(input: Option<&str>, ctx: &CheckContext<'_>) -> Vec<FieldError> {
    match input {
        Some(table) => {
            let step = table.split('.').next().unwrap_or_default();
            if ctx.needs.iter().any(|n| n == step) {
                Vec::new()
            } else {
                vec![error(
                    YamlPath::root().key("input"),
                    format!("`{table}` is not a step this step needs"),
                    suggest::hint(step, ctx.needs.iter().map(String::as_str))
                        .or_else(|| Some(format!("add `{step}` to `needs`"))),
                )]
            }
        }
        None if ctx.needs.len() == 1 => Vec::new(),
        None if ctx.needs.is_empty() => vec![FieldError {
            path: YamlPath::root(),
            message: "this step reads a dataset, but it needs no step".into(),
            hint: Some("add the step that makes its data to `needs`".into()),
            at_key: true,
        }],
        None => vec![FieldError {
            path: YamlPath::root(),
            message: format!(
                "this step needs {} steps; it cannot tell which dataset to read",
                ctx.needs.len()
            ),
            hint: Some(format!("set `input` to one of {}", ctx.needs.join(", "))),
            at_key: true,
        }],
    }
}

/// An unknown-column error for a setting, when the input's columns are known.
pub fn check_column(path: YamlPath, name: &str, columns: Option<&[Column]>) -> Option<FieldError> {
    let columns = columns?;
    if columns.iter().any(|c| c.name == name) {
        return None;
    }
    Some(error(
        path,
        format!("the input has no column `{name}`"),
        column_hint(name, columns.iter().map(|c| c.name.as_str())),
    ))
}

/// Whether a column's type (as `Column::data_type` writes it) holds numbers.
pub fn is_numeric_type(data_type: &str) -> bool {
    ["Int", "UInt", "Float", "Decimal"]
        .iter()
        .any(|p| data_type.starts_with(p))
}

/// Like `check_column`, for a column that must hold numbers (booleans count as 0 and 1).
pub fn check_numeric_column(
    path: YamlPath,
    name: &str,
    columns: Option<&[Column]>,
) -> Option<FieldError> {
    if let Some(missing) = check_column(path.clone(), name, columns) {
        return Some(missing);
    }
    let column = columns?.iter().find(|c| c.name == name)?;
    (!is_numeric_type(&column.data_type) && column.data_type != "Boolean").then(|| {
        error(
            path,
            format!("`{name}` is not numeric ({})", column.data_type),
            Some(format!(
                "use numeric columns, or convert this one first with a `clean` step: `cast: {{ {name}: float }}`"
            )),
        )
    })
}

/// An error for a new column that would clash with one the input already has.
pub fn check_new_column(
    path: YamlPath,
    name: &str,
    columns: Option<&[Column]>,
) -> Option<FieldError> {
    let columns = columns?;
    columns.iter().any(|c| c.name == name).then(|| {
        error(
            path,
            format!("the input already has a column `{name}`"),
            Some("name the new column something else".into()),
        )
    })
}

pub fn error(path: YamlPath, message: String, hint: Option<String>) -> FieldError {
    FieldError {
        path,
        message,
        hint,
        at_key: false,
    }
}

fn column_hint<'a>(name: &str, columns: impl Iterator<Item = &'a str> + Clone) -> Option<String> {
    suggest::hint(name, columns.clone()).or_else(|| {
        let all: Vec<&str> = columns.take(20).collect();
        Some(format!("the columns are {}", all.join(", ")))
    })
}

/// The table a step reads.
pub fn input_table(input: Option<&str>, ctx: &StepContext) -> Result<String, StepError> {
    if let Some(table) = input {
        return Ok(table.to_string());
    }
    match ctx.inputs.as_slice() {
        [only] => Ok(only.id.clone()),
        [] => Err(StepError::permanent(
            "this step reads a dataset, but it needs no step: add one to `needs`",
        )),
        many => Err(StepError::permanent(format!(
            "this step needs {} steps: set `input` to the one to read",
            many.len()
        ))),
    }
}

/// A table read into memory, after checking that the named columns exist.
pub struct Loaded {
    pub table: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Loaded {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The column's arrays, batch by batch.
    pub fn arrays(&self, name: &str) -> Result<Vec<ArrayRef>, StepError> {
        let index = self.schema.index_of(name).map_err(|_| {
            StepError::permanent(format!("`{}` has no column `{name}`", self.table))
        })?;
        Ok(self
            .batches
            .iter()
            .map(|b| b.column(index).clone())
            .collect())
    }

    pub fn data_type(&self, name: &str) -> Option<&DataType> {
        self.schema
            .field_with_name(name)
            .ok()
            .map(|f| f.data_type())
    }

    /// A numeric column as `f64`s (`None` for nulls). Text is refused with a clear error.
    pub fn numbers(&self, name: &str, setting: &str) -> Result<Vec<Option<f64>>, StepError> {
        let data_type = self.data_type(name).cloned().unwrap_or(DataType::Null);
        if !(data_type.is_numeric() || data_type == DataType::Boolean) {
            return Err(StepError::permanent(format!(
                "{setting}: column `{name}` of `{}` holds {data_type}, not numbers; cast it to a number first (clean `cast`) or leave it out",
                self.table
            )));
        }
        let mut values = Vec::with_capacity(self.rows());
        for array in self.arrays(name)? {
            let array = cast(&array, &DataType::Float64)?;
            let floats = array.as_primitive::<Float64Type>();
            values.extend(floats.iter());
        }
        Ok(values)
    }

    /// Any column as text (`None` for nulls).
    pub fn strings(&self, name: &str) -> Result<Vec<Option<String>>, StepError> {
        let mut values = Vec::with_capacity(self.rows());
        for array in self.arrays(name)? {
            let array = cast(&array, &DataType::Utf8)?;
            let strings = array.as_string::<i32>();
            values.extend(strings.iter().map(|s| s.map(str::to_string)));
        }
        Ok(values)
    }

    /// The batches with new columns added at the end (each new column's values in row order).
    pub fn with_columns(
        &self,
        new: Vec<(Arc<datafusion::arrow::datatypes::Field>, ArrayRef)>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), StepError> {
        let mut fields: Vec<_> = self.schema.fields().iter().cloned().collect();
        fields.extend(new.iter().map(|(f, _)| f.clone()));
        let schema = Arc::new(Schema::new(fields));
        let mut out = Vec::with_capacity(self.batches.len());
        let mut offset = 0;
        for batch in &self.batches {
            let len = batch.num_rows();
            let mut columns = batch.columns().to_vec();
            columns.extend(new.iter().map(|(_, array)| array.slice(offset, len)));
            out.push(RecordBatch::try_new(schema.clone(), columns)?);
            offset += len;
        }
        Ok((schema, out))
    }
}

/// Reads a table, checking first that every named column exists.
pub async fn load(
    ctx: &StepContext,
    table: &str,
    required: &[(&str, &str)],
) -> Result<Loaded, StepError> {
    let session = ctx.session().await?;
    let frame = session.table(table).await.map_err(|_| {
        StepError::permanent(format!(
            "there is no dataset `{table}` among this step's inputs; check `input` and `needs`"
        ))
    })?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    check_columns(table, &schema, required)?;
    let batches = frame.collect().await?;
    Ok(Loaded {
        table: table.to_string(),
        schema,
        batches,
    })
}

/// Fails when a named column is missing, naming the setting that named it.
pub fn check_columns(
    table: &str,
    schema: &Schema,
    required: &[(&str, &str)],
) -> Result<(), StepError> {
    for (setting, name) in required {
        if schema.field_with_name(name).is_err() {
            let hint = column_hint(name, schema.fields().iter().map(|f| f.name().as_str()))
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            return Err(StepError::permanent(format!(
                "{setting}: `{table}` has no column `{name}`{hint}"
            )));
        }
    }
    Ok(())
}

/// Fails when a new column would clash with one of the input's.
pub fn check_free(
    table: &str,
    schema: &Schema,
    setting: &str,
    name: &str,
) -> Result<(), StepError> {
    if schema.field_with_name(name).is_ok() {
        return Err(StepError::permanent(format!(
            "{setting}: `{table}` already has a column `{name}`; set `{setting}` to another name"
        )));
    }
    Ok(())
}

/// Counts of each value, most frequent first (ties by value, so the order is stable).
pub fn counts<'a>(values: impl Iterator<Item = &'a str>) -> Vec<(String, u64)> {
    let mut map: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for v in values {
        *map.entry(v).or_default() += 1;
    }
    let mut out: Vec<(String, u64)> = map.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Whether the array is a text column (strings are categorical features).
pub fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _)
    )
}
