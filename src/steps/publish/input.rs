//! What a publish step sends: an upstream dataset (`dataset: split` or `split.rejected`;
//! by default the only upstream step's main dataset), optionally filtered by a SQL condition,
//! read in file order so the same input always gives the same rows in the same order.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::data::{DatasetRef, MAIN_DATASET};
use crate::steps::{StepContext, StepError};

/// The dataset `given` names among the step's inputs.
pub fn pick(ctx: &StepContext, given: Option<&str>) -> Result<DatasetRef, StepError> {
    let Some(given) = given else {
        return match ctx.inputs.as_slice() {
            [] => Err(StepError::permanent(
                "there is nothing to publish: add the step whose dataset to send to `needs`",
            )),
            [one] => one.main().cloned().ok_or_else(|| {
                StepError::permanent(format!(
                    "step `{}` wrote no main dataset; name one of its datasets with `dataset: {}.NAME`",
                    one.id, one.id
                ))
            }),
            many => Err(StepError::permanent(format!(
                "this step needs several steps ({}); say which dataset to send with `dataset:`",
                many.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        };
    };
    let (step, name) = match ctx.input(given) {
        Some(_) => (given, MAIN_DATASET),
        None => given.split_once('.').unwrap_or((given, MAIN_DATASET)),
    };
    let upstream = ctx.input(step).ok_or_else(|| {
        StepError::permanent(format!(
            "`dataset: {given}` names step `{step}`, which is not in this step's `needs`"
        ))
    })?;
    upstream.dataset(name).cloned().ok_or_else(|| {
        let known: Vec<String> = upstream.datasets.iter().map(|d| d.table_name()).collect();
        StepError::permanent(format!(
            "step `{step}` wrote no dataset `{name}` (it wrote: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// The rows of `dataset` that pass `filter`, in file order (one partition: deterministic).
pub async fn read(
    ctx: &StepContext,
    dataset: &DatasetRef,
    filter: Option<&str>,
) -> Result<(SchemaRef, SendableRecordBatchStream), StepError> {
    let session = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let path = dataset.path(&ctx.run_dir);
    let table = dataset.step.clone();
    session
        .register_parquet(
            format!("\"{}\"", table.replace('"', "\"\"")),
            path.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await?;
    let mut sql = format!("SELECT * FROM \"{}\"", table.replace('"', "\"\""));
    if let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) {
        sql.push_str(&format!(" WHERE ({filter})"));
    }
    let frame = session.sql(&sql).await.map_err(|e| {
        StepError::permanent(format!(
            "`filter` is not a valid condition over dataset `{}`: {e}",
            dataset.table_name()
        ))
    })?;
    let schema = frame.schema().inner().clone();
    let stream = frame
        .execute_stream()
        .await
        .map_err(|e| read_error(dataset, &e))?;
    Ok((schema, stream))
}

/// An error met while reading the rows. DataFusion quotes the value that broke a cast or a
/// function (`Cannot cast string 'ada@example.com' to value of Int64 type`), and a step's
/// error goes to `runs show`, notifications and the web UI: the values are left out.
pub fn read_error(dataset: &DatasetRef, error: &dyn std::fmt::Display) -> StepError {
    StepError::permanent(format!(
        "reading dataset {} failed: {}; check `filter` against the column types (cast columns upstream, e.g. with `clean: cast`)",
        dataset.table_name(),
        crate::data::without_values(&error.to_string())
    ))
}

/// Checks a `filter` parses as one SQL condition (columns are checked when the step runs).
pub fn check_filter(filter: &str) -> Option<String> {
    let dialect = GenericDialect {};
    let mut parser = match Parser::new(&dialect).try_with_sql(filter) {
        Ok(parser) => parser,
        Err(e) => return Some(format!("`filter` is not valid SQL: {e}")),
    };
    if let Err(e) = parser.parse_expr() {
        return Some(format!("`filter` is not a valid SQL condition: {e}"));
    }
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Some(format!(
            "`filter` has more after the condition, from `{}`; write one condition, e.g. `group = 'treatment' AND score > 3`",
            next.token
        ));
    }
    None
}

/// Checks `dataset:` names a step of `needs`.
pub fn check_dataset(given: &str, needs: &[String]) -> Option<String> {
    if needs.iter().any(|n| n == given) {
        return None;
    }
    let step = given.split_once('.').map_or(given, |(s, _)| s);
    if needs.iter().any(|n| n == step) {
        return None;
    }
    let hint = crate::spec::suggest::hint(step, needs.iter().map(String::as_str))
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    Some(format!(
        "`dataset: {given}` names step `{step}`, which is not in `needs` ({}){hint}",
        needs.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_must_be_one_condition() {
        assert_eq!(check_filter("group = 'treatment' AND score > 3"), None);
        assert!(check_filter("group = ").is_some());
        assert!(check_filter("a = 1; DROP TABLE x").is_some());
    }

    #[test]
    fn datasets_must_come_from_needs() {
        let needs = vec!["split".to_string()];
        assert_eq!(check_dataset("split", &needs), None);
        assert_eq!(check_dataset("split.rejected", &needs), None);
        let error = check_dataset("splt", &needs).unwrap();
        assert!(error.contains("split"), "{error}");
    }
}
