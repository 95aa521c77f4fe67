//! Error messages without customer data. Arrow and DataFusion quote the value that did not fit
//! ("Cannot cast string 'ada@example.com' to value of Int64 type"); such messages end up in step
//! reasons, `runs show`, Slack notifications and the web UI, so the quoted values are masked.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// Arrow's and DataFusion's value quotes: `'…'`, with SQL's `''` inside (literals from the
/// user's own query are masked too; they are in the pipeline file for whoever needs them).
static QUOTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"'(?:[^'\n]|'')*'").expect("the pattern is valid"));

/// Anything shaped like an email address, quoted or not.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[^\s'\x22<>()\[\]{},;:]+@[^\s'\x22<>()\[\]{},;:]+").expect("the pattern is valid")
});

/// The text with every single-quoted value replaced by `'…'` and every email address by
/// `<email>`.
pub fn without_values(text: &str) -> Cow<'_, str> {
    let unquoted = QUOTED.replace_all(text, "'…'");
    if !EMAIL.is_match(&unquoted) {
        return unquoted;
    }
    Cow::Owned(EMAIL.replace_all(&unquoted, "<email>").into_owned())
}

/// The message of an error, with data values masked when the error came from reading or
/// computing data (Arrow, DataFusion, Parquet, CSV).
pub fn message_of<E: std::error::Error + 'static>(error: &E) -> String {
    let any: &dyn std::any::Any = error;
    let from_data = any.is::<datafusion::error::DataFusionError>()
        || any.is::<datafusion::arrow::error::ArrowError>()
        || any.is::<datafusion::parquet::errors::ParquetError>()
        || any.is::<super::DataError>()
        || any.is::<csv::Error>();
    let text = error.to_string();
    if from_data {
        without_values(&text).into_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_values_arrow_quotes() {
        let error = datafusion::arrow::error::ArrowError::CastError(
            "Cannot cast string 'ada@example.com' to value of Int64 type".into(),
        );
        assert_eq!(
            message_of(&error),
            "Cast error: Cannot cast string '…' to value of Int64 type"
        );
        let io = std::io::Error::other("file 'a.csv' is gone");
        assert_eq!(message_of(&io), "file 'a.csv' is gone");
        assert_eq!(
            without_values("bad value bob@example.test in column `email`, 'it''s'"),
            "bad value <email> in column `email`, '…'"
        );
    }
}
