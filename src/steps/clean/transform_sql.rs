//! `transform.sql`: one SQL query (DataFusion's dialect) over the upstream datasets; the result
//! is this step's main dataset. Each upstream step's main dataset is the table named after the
//! step (`clean`), its other datasets are `step.name` (`clean.rejected`).

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::TableReference;
use datafusion::prelude::{cast, col};
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::data::MAIN_DATASET;
use crate::spec::deserialize::FieldError;
use crate::spec::suggest;
use crate::spec::yaml_path::YamlPath;
use crate::steps::streaming::copy_stream;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct TransformSql;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformSqlConfig {
    /// The query, e.g. `SELECT customer_id, sum(amount) AS revenue FROM clean GROUP BY 1`.
    #[serde(default)]
    pub query: Option<String>,
    /// A file holding the query, relative to the project folder (instead of `query`).
    #[serde(default)]
    pub file: Option<String>,
}

#[async_trait]
impl Kind for TransformSql {
    const NAME: &'static str = "transform.sql";
    const DESCRIPTION: &'static str =
        "Runs a SQL query over the upstream datasets (each under its step id).";
    const OUTPUTS: &'static [&'static str] = &["rows", "columns"];
    type Config = TransformSqlConfig;

    fn check(&self, config: &TransformSqlConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let error = |key: &str, message: String, hint: Option<String>| FieldError {
            path: if key.is_empty() {
                YamlPath::root()
            } else {
                YamlPath::root().key(key)
            },
            message,
            hint,
            at_key: false,
        };
        let (key, query) = match (&config.query, &config.file) {
            (Some(_), Some(_)) => {
                return vec![error(
                    "file",
                    "give `query` or `file`, not both".into(),
                    None,
                )];
            }
            (None, None) => {
                return vec![error(
                    "",
                    "missing required key `query`".into(),
                    Some("add `query: SELECT … FROM <step id>` (or `file: queries/x.sql`)".into()),
                )];
            }
            (Some(query), None) => ("query", query.clone()),
            (None, Some(file)) => {
                let path = if std::path::Path::new(file).is_absolute() {
                    std::path::PathBuf::from(file)
                } else {
                    ctx.base_dir.join(file)
                };
                match std::fs::read_to_string(&path) {
                    Ok(text) => ("file", text),
                    Err(e) => {
                        return vec![error(
                            "file",
                            format!("cannot read {}: {e}", path.display()),
                            None,
                        )];
                    }
                }
            }
        };
        match check_query(&query, ctx.needs) {
            Ok(()) => Vec::new(),
            Err((message, hint)) => vec![error(key, message, hint)],
        }
    }

    async fn run(
        &self,
        config: TransformSqlConfig,
        ctx: &StepContext,
    ) -> Result<StepOutput, StepError> {
        let query = match (&config.query, &config.file) {
            (Some(query), None) => query.clone(),
            (None, Some(file)) => std::fs::read_to_string(ctx.resolve_path(file))
                .map_err(|e| StepError::permanent(format!("cannot read `{file}`: {e}")))?,
            _ => return Err(StepError::permanent("give either `query` or `file`")),
        };
        let session = ctx.session().await?;
        let tables = available_tables(ctx);
        let frame = session.sql(&query).await.map_err(|e| {
            StepError::permanent(format!(
                "the query does not run: {}; tables here: {}",
                first_line(&e.to_string()),
                tables.join(", ")
            ))
        })?;
        // Strings as plain Utf8, whatever DataFusion used inside, so datasets have one string type.
        let projection: Vec<_> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8View | DataType::LargeUtf8 => cast(
                    col(datafusion::common::Column::from_name(f.name())),
                    DataType::Utf8,
                )
                .alias(f.name()),
                _ => col(datafusion::common::Column::from_name(f.name())),
            })
            .collect();
        let frame = frame.select(projection)?;
        let schema = frame.schema().inner().clone();
        let mut writer = ctx.dataset_writer(MAIN_DATASET, schema.clone())?;
        let stream = frame.execute_stream().await.map_err(|e| {
            StepError::permanent(format!("the query failed: {}", first_line(&e.to_string())))
        })?;
        copy_stream(stream, &mut writer, &ctx.cancel)
            .await
            .map_err(|e| StepError::permanent(format!("the query failed: {e}")))?;
        let dataset = ctx.finish_dataset(writer)?;
        ctx.info(&format!(
            "wrote {} rows × {} columns",
            dataset.rows,
            schema.fields().len()
        ));
        Ok(StepOutput::default()
            .with("rows", dataset.rows)
            .with("columns", schema.fields().len()))
    }
}

/// The table names this step's query can use.
fn available_tables(ctx: &StepContext) -> Vec<String> {
    ctx.inputs
        .iter()
        .flat_map(|i| i.datasets.iter().map(|d| d.table_name()))
        .collect()
}

/// The query is one SELECT whose tables are steps in `needs`.
fn check_query(query: &str, needs: &[String]) -> Result<(), (String, Option<String>)> {
    let mut statements = DFParser::parse_sql(query).map_err(|e| {
        (
            format!("not valid SQL: {}", first_line(&e.to_string())),
            None,
        )
    })?;
    if statements.len() != 1 {
        return Err((
            format!(
                "{} statements; transform.sql runs exactly one query",
                statements.len()
            ),
            None,
        ));
    }
    let statement = statements.pop_front().expect("one statement");
    if !matches!(&statement, Statement::Statement(s) if matches!(s.as_ref(), SqlStatement::Query(_)))
    {
        return Err((
            "transform.sql runs a query (SELECT … or WITH … SELECT …), nothing else".into(),
            None,
        ));
    }
    let (tables, _ctes) = datafusion::sql::resolve::resolve_table_references(&statement, true)
        .map_err(|e| (first_line(&e.to_string()).to_string(), None))?;
    for table in tables {
        let step = match &table {
            TableReference::Bare { table } => table.to_string(),
            TableReference::Partial { schema, .. } => schema.to_string(),
            TableReference::Full { schema, .. } => schema.to_string(),
        };
        if !needs.contains(&step) {
            let hint = match suggest::closest(&step, needs.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `{close}`?"),
                None if needs.is_empty() => {
                    format!("add `needs: [{step}]` to the step so its dataset is a table here")
                }
                None => format!(
                    "the tables here are the steps in `needs` ({}); add `{step}` to `needs` if it is a step",
                    needs.join(", ")
                ),
            };
            return Err((
                format!("the query reads table `{table}`, which is not a step this one needs"),
                Some(hint),
            ));
        }
    }
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::check_query;

    #[test]
    fn accepts_queries_over_needed_steps() {
        let needs = vec!["clean".to_string(), "orders".to_string()];
        assert!(check_query("SELECT * FROM clean JOIN orders USING (id)", &needs).is_ok());
        assert!(check_query("WITH t AS (SELECT * FROM clean) SELECT * FROM t", &needs).is_ok());
        assert!(check_query("SELECT * FROM clean.rejected", &needs).is_ok());
    }

    #[test]
    fn names_what_is_wrong() {
        let needs = vec!["clean".to_string()];
        let (message, hint) = check_query("SELECT * FROM claen", &needs).unwrap_err();
        assert!(message.contains("`claen`"), "{message}");
        assert_eq!(hint.as_deref(), Some("did you mean `clean`?"));
        let (message, _) = check_query("SELEC * FROM clean", &needs).unwrap_err();
        assert!(message.starts_with("not valid SQL"), "{message}");
        let (message, _) = check_query("DROP TABLE clean", &needs).unwrap_err();
        assert!(message.contains("runs a query"), "{message}");
    }
}
