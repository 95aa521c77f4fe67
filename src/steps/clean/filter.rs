//! `filter`: keeps the rows where a SQL condition is true (DataFusion's SQL, evaluated batch-wide
//! so the row order stays). Rows left out are counted as dropped, not rejected: a filter states
//! which rows the pipeline is about, it does not say they are wrong.

use datafusion::arrow::array::BooleanArray;
use datafusion::common::DFSchema;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::table::Table;
use crate::steps::StepError;

pub fn apply(table: &mut Table, condition: &str) -> Result<(), StepError> {
    let session = SessionContext::new();
    let schema = DFSchema::try_from(table.schema().as_ref().clone())?;
    let expression = session
        .parse_sql_expr(condition, &schema)
        .map_err(|e| StepError::permanent(format!("filter: {}", first_line(&e.to_string()))))?;
    let physical = session
        .create_physical_expr(expression, &schema)
        .map_err(|e| StepError::permanent(format!("filter: {}", first_line(&e.to_string()))))?;
    let result = physical
        .evaluate(&table.batch()?)?
        .into_array(table.rows())?;
    let Some(keep) = result.as_any().downcast_ref::<BooleanArray>() else {
        return Err(StepError::permanent(format!(
            "filter: the condition gives {} values, not true/false; write a comparison like `amount > 0`",
            result.data_type()
        )));
    };
    let keep = keep.clone();
    table.drop_unless(&keep)
}

/// Validate-time check: the condition is one SQL expression.
pub fn check_syntax(condition: &str) -> Result<(), String> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(condition)
        .map_err(|e| e.to_string())?;
    parser.parse_expr().map_err(|e| e.to_string())?;
    match parser.peek_token().token {
        datafusion::sql::sqlparser::tokenizer::Token::EOF => Ok(()),
        other => Err(format!("unexpected `{other}` after the condition")),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
