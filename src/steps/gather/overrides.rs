//! `types:` overrides: the user's column types win over inferred ones, and a column named there
//! that the source does not have is an error with a suggestion.

use datafusion::arrow::datatypes::{Field, Schema};
use indexmap::IndexMap;

use crate::data::ColumnType;
use crate::spec::deserialize::FieldError;
use crate::spec::suggest;
use crate::spec::yaml_path::YamlPath;
use crate::steps::StepError;

/// `schema` with the overridden columns' types replaced.
pub fn apply_overrides(
    schema: &Schema,
    types: &IndexMap<String, ColumnType>,
    source: &str,
) -> Result<Schema, StepError> {
    check_columns(schema, types.keys(), "types", source)?;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match types.get(f.name()) {
            Some(t) => Field::new(f.name(), t.data_type(), true),
            None => f.as_ref().clone().with_nullable(true),
        })
        .collect();
    Ok(Schema::new(fields))
}

/// An error naming the first of `columns` that `schema` lacks, with a suggestion and the columns
/// there are.
pub fn check_columns<'a>(
    schema: &Schema,
    columns: impl IntoIterator<Item = &'a String>,
    option: &str,
    source: &str,
) -> Result<(), StepError> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for column in columns {
        if !names.contains(&column.as_str()) {
            let hint = suggest::closest(column, names.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            return Err(StepError::permanent(format!(
                "`{option}` names column `{column}`, which {source} does not have; {hint}its columns are: {}",
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// For `segflow validate`: each column `types` names that the source's header lacks, at its key.
pub fn unknown_type_columns(
    schema: &Schema,
    types: &IndexMap<String, ColumnType>,
    source: &str,
) -> Vec<FieldError> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    types
        .keys()
        .filter(|column| !names.contains(&column.as_str()))
        .map(|column| FieldError {
            path: YamlPath::root().key("types").key(column),
            message: format!("{source} has no column `{column}`"),
            hint: suggest::closest(column, names.iter().copied())
                .map(|c| format!("did you mean `{c}`?"))
                .or_else(|| Some(format!("its columns are: {}", names.join(", ")))),
            at_key: true,
        })
        .collect()
}
