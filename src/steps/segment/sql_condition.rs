//! A SQL condition as `segment.rules` takes it: parsed before the run (so a typo is caught by
//! `segflow validate`) and searched for the columns it names.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, visit_expressions};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

/// A column a condition names, as DataFusion will look it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRef {
    /// Unquoted names are lowercased (as DataFusion does); quoted ones are kept as written.
    pub name: String,
    /// Written in double quotes: in SQL that names a column, not a string.
    pub double_quoted: bool,
}

/// Parses `condition` as one SQL expression; the columns it names, or why it does not parse.
pub fn columns(condition: &str) -> Result<Vec<ColumnRef>, String> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(condition)
        .map_err(|e| e.to_string())?;
    let expr = parser.parse_expr().map_err(|e| e.to_string())?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(format!(
            "unexpected `{}` after the end of the condition",
            next.token
        ));
    }
    let mut found: Vec<ColumnRef> = Vec::new();
    let _ = visit_expressions(&expr, |e| {
        let ident = match e {
            Expr::Identifier(ident) => Some(ident),
            Expr::CompoundIdentifier(parts) => parts.last(),
            _ => None,
        };
        if let Some(ident) = ident {
            let name = match ident.quote_style {
                Some(_) => ident.value.clone(),
                None => ident.value.to_lowercase(),
            };
            let column = ColumnRef {
                name,
                double_quoted: ident.quote_style == Some('"'),
            };
            if !found.contains(&column) {
                found.push(column);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(found)
}

/// A SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A SQL identifier, quoted so any column name works.
pub fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(condition: &str) -> Vec<String> {
        columns(condition)
            .expect("parses")
            .into_iter()
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn finds_the_columns_a_condition_names() {
        assert_eq!(
            names("age < 30 AND income >= 80000 AND city IN ('Berlin', 'Paris')"),
            ["age", "income", "city"]
        );
        assert_eq!(names("lower(Region) = 'north'"), ["region"]);
        assert_eq!(names("\"Annual Spend\" > 10"), ["Annual Spend"]);
        assert_eq!(names("true"), Vec::<String>::new());
    }

    #[test]
    fn a_double_quoted_string_is_a_column() {
        let found = columns("city = \"urban\"").expect("parses");
        assert_eq!(found[1].name, "urban");
        assert!(found[1].double_quoted);
    }

    #[test]
    fn rejects_what_is_not_one_expression() {
        assert!(columns("age <").is_err());
        assert!(columns("age < 3 4").is_err());
        assert!(columns("").is_err());
    }

    #[test]
    fn quotes_literals_and_identifiers() {
        assert_eq!(literal("Can't Lose Them"), "'Can''t Lose Them'");
        assert_eq!(identifier("a\"b"), "\"a\"\"b\"");
    }
}
