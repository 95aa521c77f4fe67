//! `gather.sql`: runs a query on PostgreSQL and streams the rows into the step's main dataset,
//! a few thousand rows per Arrow batch. Parameters are bound (`$1`, `$2` …), never spliced into
//! the SQL. The URL comes from `url` (usually `${{ secrets.NAME }}`) or the environment
//! variable named by `url_env`, and is never written anywhere.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::pg_arrow::{Param, PgColumn, column_for};
use crate::data::MAIN_DATASET;
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::streaming::cancelled;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct GatherSql;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatherSqlConfig {
    /// The PostgreSQL URL, e.g. `"${{ secrets.CRM_DATABASE_URL }}"` (never write it out in the file).
    #[serde(default)]
    pub url: Option<String>,
    /// The name of an environment variable holding the URL (instead of `url`).
    #[serde(default)]
    pub url_env: Option<String>,
    /// The query; parameters are `$1`, `$2` … and come from `params`.
    pub query: String,
    /// Values bound to `$1`, `$2` … in order (converted to the types PostgreSQL expects).
    #[serde(default)]
    pub params: Vec<Value>,
    /// Rows per Arrow batch (default 4096).
    #[serde(default = "default_batch_rows")]
    #[schemars(range(min = 1))]
    pub batch_rows: usize,
}

fn default_batch_rows() -> usize {
    4096
}

/// `postgres://user:secret@host/…` written out in the file.
fn has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .is_some_and(|(credentials, _)| credentials.contains(':'))
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[async_trait]
impl Kind for GatherSql {
    const NAME: &'static str = "gather.sql";
    const DESCRIPTION: &'static str =
        "Runs a query on PostgreSQL (bound parameters) and streams the rows into a dataset.";
    const OUTPUTS: &'static [&'static str] = &["rows"];
    type Config = GatherSqlConfig;

    fn check(&self, config: &GatherSqlConfig, _ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let error = |key: &str, message: &str, hint: &str| FieldError {
            path: YamlPath::root().key(key),
            message: message.into(),
            hint: Some(hint.into()),
            at_key: false,
        };
        let mut errors = Vec::new();
        match (&config.url, &config.url_env) {
            (Some(_), Some(_)) => errors.push(error(
                "url_env",
                "give `url` or `url_env`, not both",
                "keep one",
            )),
            (None, None) => errors.push(FieldError {
                path: YamlPath::root(),
                message: "missing required key `url`".into(),
                hint: Some(
                    "add `url: \"${{ secrets.DATABASE_URL }}\"` or `url_env: DATABASE_URL`".into(),
                ),
                at_key: false,
            }),
            (Some(url), None) if has_password(url) => errors.push(error(
                "url",
                "the database URL is written out in the pipeline file",
                "keep credentials out of files: `url: \"${{ secrets.DATABASE_URL }}\"`",
            )),
            _ => {}
        }
        if config.query.trim().is_empty() {
            errors.push(error(
                "query",
                "the query is empty",
                "write the SELECT to run",
            ));
        }
        errors
    }

    async fn run(
        &self,
        config: GatherSqlConfig,
        ctx: &StepContext,
    ) -> Result<StepOutput, StepError> {
        let url = match (&config.url, &config.url_env) {
            (Some(url), None) => url.clone(),
            (None, Some(name)) => std::env::var(name).map_err(|_| {
                StepError::permanent(format!(
                    "the environment variable {name} (url_env) is not set"
                ))
            })?,
            _ => return Err(StepError::permanent("give either `url` or `url_env`")),
        };
        crate::redact::register(&url);
        let mut pg_config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StepError::permanent(format!("the database URL is not valid: {e}")))?;
        if let Some(password) = pg_config.get_password() {
            crate::redact::register(&String::from_utf8_lossy(password));
        }
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(CONNECT_TIMEOUT);
        }
        pg_config.application_name("segflow");

        let (client, connection) = tokio::select! {
            connected = pg_config.connect(NoTls) => connected.map_err(|e| {
                StepError::new(format!("cannot connect to PostgreSQL: {}", describe(&e)))
            })?,
            _ = ctx.cancel.cancelled() => return Err(cancelled()),
        };
        let connection = tokio::spawn(connection);
        let result = stream_query(&client, &config, ctx).await;
        drop(client);
        connection.abort();
        let rows = result?;
        ctx.info(&format!("read {rows} rows from PostgreSQL"));
        Ok(StepOutput::default().with("rows", rows))
    }
}

async fn stream_query(
    client: &tokio_postgres::Client,
    config: &GatherSqlConfig,
    ctx: &StepContext,
) -> Result<u64, StepError> {
    let statement = client.prepare(&config.query).await.map_err(query_error)?;
    if statement.params().len() != config.params.len() {
        return Err(StepError::permanent(format!(
            "the query has {} parameter{} ($1 …) but `params` gives {}",
            statement.params().len(),
            if statement.params().len() == 1 {
                ""
            } else {
                "s"
            },
            config.params.len()
        )));
    }
    let params: Vec<Param> = config
        .params
        .iter()
        .zip(statement.params())
        .enumerate()
        .map(|(i, (value, ty))| {
            Param::for_type(value, ty)
                .map_err(|e| StepError::permanent(format!("params[{i}] (${}): {e}", i + 1)))
        })
        .collect::<Result<_, _>>()?;

    let mut fields = Vec::new();
    let mut columns: Vec<PgColumn> = Vec::new();
    for column in statement.columns() {
        let (field, builder) = column_for(column.name(), column.type_(), column.type_modifier())
            .map_err(StepError::permanent)?;
        fields.push(field);
        columns.push(builder);
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut writer = ctx.dataset_writer(MAIN_DATASET, schema.clone())?;

    let stream = client
        .query_raw(&statement, params.iter())
        .await
        .map_err(query_error)?;
    futures::pin_mut!(stream);
    loop {
        let row = tokio::select! {
            row = stream.next() => row,
            _ = ctx.cancel.cancelled() => return Err(cancelled()),
        };
        let Some(row) = row else { break };
        let row = row.map_err(query_error)?;
        for (index, column) in columns.iter_mut().enumerate() {
            column.append(&row, index).map_err(|why| {
                let name = statement.columns()[index].name();
                StepError::permanent(format!(
                    "column `{name}`: {why}; cast it in the query, e.g. `{name}::float8` or `{name}::text`"
                ))
            })?;
        }
        if columns
            .first()
            .is_some_and(|c| c.len() >= config.batch_rows)
        {
            writer.write(&batch(&schema, &mut columns)?)?;
        }
    }
    if columns.first().is_some_and(|c| c.len() > 0) {
        writer.write(&batch(&schema, &mut columns)?)?;
    }
    let dataset = ctx.finish_dataset(writer)?;
    Ok(dataset.rows)
}

fn batch(schema: &SchemaRef, columns: &mut [PgColumn]) -> Result<RecordBatch, StepError> {
    let arrays = columns.iter_mut().map(PgColumn::finish).collect();
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

/// A failed query: errors of the query itself are permanent, lost connections are retried.
fn query_error(error: tokio_postgres::Error) -> StepError {
    let message = format!("the query failed: {}", describe(&error));
    match error.code() {
        Some(code) if is_transient(code) => StepError::new(message),
        Some(_) => StepError::permanent(message),
        None if error.is_closed() || error.as_db_error().is_none() && is_io(&error) => {
            StepError::new(message)
        }
        None => StepError::permanent(message),
    }
}

fn is_io(error: &tokio_postgres::Error) -> bool {
    std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>())
}

fn is_transient(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") // connection exception
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock
        || code == "53300" // too many connections
        || code == "57P01" // admin shutdown
        || code == "57P03" // cannot connect now
}

/// The error's own words (the server's message for database errors), never the URL.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}
