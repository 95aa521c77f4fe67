//! `trim` and `lowercase` of text columns.

use std::sync::Arc;

use datafusion::arrow::array::StringArray;

use super::config::Columns;
use super::table::Table;
use crate::steps::StepError;

#[derive(Debug, Clone, Copy)]
pub enum TextOperation {
    Trim,
    Lowercase,
}

pub fn apply(
    table: &mut Table,
    columns: &Columns,
    operation: TextOperation,
) -> Result<(), StepError> {
    let names = match columns {
        Columns::All(_) => table.text_columns(),
        Columns::Named(names) => names.clone(),
    };
    for name in &names {
        let text = table.text_column(name)?;
        let mut changed = 0;
        let result: StringArray = text
            .iter()
            .map(|value| {
                value.map(|v| {
                    let new = match operation {
                        TextOperation::Trim => std::borrow::Cow::Borrowed(v.trim()),
                        TextOperation::Lowercase if v.chars().any(char::is_uppercase) => {
                            std::borrow::Cow::Owned(v.to_lowercase())
                        }
                        TextOperation::Lowercase => std::borrow::Cow::Borrowed(v),
                    };
                    if new != v {
                        changed += 1;
                    }
                    new
                })
            })
            .collect();
        table.replace(name, Arc::new(result))?;
        table.count_changed(changed);
    }
    Ok(())
}
