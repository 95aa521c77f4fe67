//! Reading a CSV file's header and guessing its column types from the first rows.
//!
//! Numbers with leading zeros (`00042`) stay text: they are identifiers (customer numbers, ZIP
//! codes) whose zeros matter, not quantities.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::files::SourceFile;
use crate::steps::StepError;

#[derive(Debug, Clone, Copy)]
pub struct CsvFormat {
    pub header: bool,
    pub delimiter: u8,
}

impl CsvFormat {
    pub fn reader(&self, file: &SourceFile) -> Result<csv::Reader<std::fs::File>, StepError> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(self.delimiter)
            .flexible(true)
            .from_path(&file.path)
            .map_err(|e| StepError::new(format!("cannot read `{}`: {e}", file.name)))
    }
}

/// The column names of a file: its header, or `column_1…column_n` without one.
pub fn read_names(file: &SourceFile, format: CsvFormat) -> Result<Vec<String>, StepError> {
    let mut reader = format.reader(file)?;
    let mut first = csv::StringRecord::new();
    let found = reader
        .read_record(&mut first)
        .map_err(|e| read_error(file, e))?;
    if !found || first.iter().all(|f| f.trim().is_empty()) && first.len() <= 1 {
        return Err(StepError::permanent(format!(
            "`{}` is empty: it has no header and no rows",
            file.name
        )));
    }
    if !format.header {
        return Ok((1..=first.len()).map(|i| format!("column_{i}")).collect());
    }
    let mut names: Vec<String> = Vec::with_capacity(first.len());
    for (i, raw) in first.iter().enumerate() {
        let name = raw.trim_start_matches('\u{feff}').trim();
        let name = if name.is_empty() {
            format!("column_{}", i + 1)
        } else {
            name.to_string()
        };
        if let Some(earlier) = names.iter().position(|n| *n == name) {
            return Err(StepError::permanent(format!(
                "the header of `{}` names column `{name}` twice (columns {} and {}); rename one",
                file.name,
                earlier + 1,
                i + 1
            )));
        }
        names.push(name);
    }
    Ok(names)
}

/// The schema of a file: its names, with types guessed from the first `rows` well-formed rows.
pub fn infer_schema(
    file: &SourceFile,
    format: CsvFormat,
    rows: usize,
) -> Result<Schema, StepError> {
    let names = read_names(file, format)?;
    let mut guesses = vec![Guess::default(); names.len()];
    let mut reader = format.reader(file)?;
    let mut record = csv::StringRecord::new();
    let mut seen = 0;
    let mut first = true;
    while seen < rows {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            // Bad bytes are the row reader's business; inference just stops.
            Err(_) => break,
        }
        if first && format.header {
            first = false;
            continue;
        }
        first = false;
        if record.len() != names.len() {
            continue;
        }
        for (guess, value) in guesses.iter_mut().zip(record.iter()) {
            guess.observe(value);
        }
        seen += 1;
    }
    let fields: Vec<Field> = names
        .iter()
        .zip(&guesses)
        .map(|(name, guess)| Field::new(name, guess.data_type(), true))
        .collect();
    Ok(Schema::new(fields))
}

fn read_error(file: &SourceFile, error: csv::Error) -> StepError {
    StepError::new(format!("cannot read `{}`: {error}", file.name))
}

/// What the values of one column seen so far could all be.
#[derive(Debug, Clone)]
struct Guess {
    seen: bool,
    integer: bool,
    float: bool,
    boolean: bool,
    date: bool,
    timestamp: bool,
    offset: bool,
}

impl Default for Guess {
    fn default() -> Self {
        Guess {
            seen: false,
            integer: true,
            float: true,
            boolean: true,
            date: true,
            timestamp: true,
            offset: false,
        }
    }
}

impl Guess {
    fn observe(&mut self, value: &str) {
        // Empty fields are nulls and say nothing about the type.
        if value.is_empty() {
            return;
        }
        self.seen = true;
        if self.integer && !is_integer(value) {
            self.integer = false;
        }
        if self.float && !is_float(value) {
            self.float = false;
        }
        if self.boolean
            && !(value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"))
        {
            self.boolean = false;
        }
        if self.date && !(value.len() == 10 && NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok())
        {
            self.date = false;
        }
        if self.timestamp {
            match timestamp_kind(value) {
                Some(with_offset) => self.offset |= with_offset,
                None => self.timestamp = false,
            }
        }
    }

    fn data_type(&self) -> DataType {
        if !self.seen {
            DataType::Utf8
        } else if self.integer {
            DataType::Int64
        } else if self.float {
            DataType::Float64
        } else if self.boolean {
            DataType::Boolean
        } else if self.date {
            DataType::Date32
        } else if self.timestamp {
            let zone = self.offset.then(|| "UTC".into());
            DataType::Timestamp(TimeUnit::Microsecond, zone)
        } else {
            DataType::Utf8
        }
    }
}

fn is_integer(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !(digits.len() > 1 && digits.starts_with('0'))
        && value.parse::<i64>().is_ok()
}

fn is_float(value: &str) -> bool {
    let body = value.strip_prefix('-').unwrap_or(value);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction);
    // A leading zero before more digits (`007`) marks an identifier, as for integers.
    let zeros_ok = !(whole.len() > 1 && whole.starts_with('0'));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && zeros_ok && exponent_ok
}

/// `Some(has_offset)` when the value is a timestamp Arrow's CSV reader understands.
fn timestamp_kind(value: &str) -> Option<bool> {
    if value.len() < 19 {
        return None;
    }
    if DateTime::parse_from_rfc3339(value).is_ok() {
        return Some(true);
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(value, f).is_ok())
        .then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(values: &[&str]) -> DataType {
        let mut guess = Guess::default();
        values.iter().for_each(|v| guess.observe(v));
        guess.data_type()
    }

    #[test]
    fn guesses_types_from_values() {
        assert_eq!(guess(&["1", "-20", ""]), DataType::Int64);
        assert_eq!(guess(&["1", "2.5", "1e3"]), DataType::Float64);
        assert_eq!(guess(&["true", "FALSE"]), DataType::Boolean);
        assert_eq!(guess(&["2026-01-31", ""]), DataType::Date32);
        assert_eq!(
            guess(&["2026-01-31 10:00:00", "2026-01-31T10:00:00.5"]),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(
            guess(&["2026-01-31T10:00:00Z"]),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(guess(&["1", "x"]), DataType::Utf8);
        assert_eq!(guess(&["", ""]), DataType::Utf8);
    }

    #[test]
    fn leading_zeros_keep_identifiers_as_text() {
        assert_eq!(guess(&["00001", "00002"]), DataType::Utf8);
        assert_eq!(guess(&["0", "10"]), DataType::Int64);
        assert_eq!(guess(&["0.5", "10.25"]), DataType::Float64);
    }
}
