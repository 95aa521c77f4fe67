//! From input rows to contacts: the field mapping (platform field ← column), Arrow cells as
//! JSON values, the customer key, and a stable hash of what is sent (for `mode: diff`).

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::datatypes::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use indexmap::IndexMap;
use serde_json::{Map, Number, Value};
use sha2::{Digest as _, Sha256};

use super::preset::{Preset, hex};

/// Which column feeds which platform field, and which column is the customer key.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// (platform field, column index), in the order of the config.
    pub fields: Vec<(String, usize)>,
    pub key_column: usize,
    pub key_name: String,
    /// The field a generic removal names the customer by.
    generic_identity: String,
    preset: Preset,
}

/// One input row, mapped.
#[derive(Debug, Clone)]
pub struct Contact {
    /// 1-based row number in the (filtered) input: how errors and logs name a row.
    pub row: u64,
    pub key: Option<String>,
    /// Mapped values; nulls are left out.
    pub fields: Map<String, Value>,
}

impl Mapping {
    /// Checks the mapping against the input's columns. `fields` maps platform fields to columns;
    /// without it every column is sent under its own name.
    pub fn new(
        fields: Option<&IndexMap<String, String>>,
        key: Option<&str>,
        schema: &Schema,
        preset: Preset,
    ) -> Result<Self, String> {
        let column = |name: &str, what: &str| -> Result<usize, String> {
            schema.index_of(name).map_err(|_| {
                let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                let hint = crate::spec::suggest::hint(name, known.iter().copied())
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                format!(
                    "{what} names the column `{name}`, which the input does not have (its columns: {}){hint}",
                    known.join(", ")
                )
            })
        };
        let mapped: Vec<(String, usize)> = match fields {
            Some(fields) => fields
                .iter()
                .map(|(target, source)| {
                    column(source, &format!("`fields.{target}`")).map(|i| (target.clone(), i))
                })
                .collect::<Result<_, _>>()?,
            None => schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name().clone(), i))
                .collect(),
        };
        if mapped.is_empty() {
            return Err("`fields` maps no field; name at least the contact's identifier".into());
        }
        let identifiers = preset.identifiers();
        if !identifiers.is_empty()
            && !mapped
                .iter()
                .any(|(t, _)| identifiers.contains(&t.as_str()))
        {
            return Err(format!(
                "the {} preset needs one of these fields to identify a contact: {}; map one in `fields` (e.g. `email: email_column`)",
                preset.name(),
                identifiers.join(", ")
            ));
        }
        let key_column = match key {
            Some(key) => column(key, "`key`")?,
            None => identifiers
                .iter()
                .find_map(|id| mapped.iter().find(|(t, _)| t == id).map(|(_, i)| *i))
                .or_else(|| {
                    ["customer_id", "id", "email"]
                        .iter()
                        .find_map(|c| schema.index_of(c).ok())
                })
                .ok_or_else(|| {
                    "set `key:` to the column that identifies a customer (e.g. `key: customer_id`)"
                        .to_string()
                })?,
        };
        let key_name = schema.field(key_column).name().clone();
        let generic_identity = mapped
            .iter()
            .find(|(_, i)| *i == key_column)
            .map(|(t, _)| t.clone())
            .unwrap_or_else(|| "key".to_string());
        Ok(Mapping {
            fields: mapped,
            key_column,
            key_name,
            generic_identity,
            preset,
        })
    }

    pub fn targets(&self) -> Vec<String> {
        self.fields.iter().map(|(t, _)| t.clone()).collect()
    }

    /// The mapped contacts of one input batch; `first_row` is the row number of its first row.
    pub fn contacts(&self, batch: &RecordBatch, first_row: u64) -> Result<Vec<Contact>, String> {
        let columns: Vec<ArrayRef> = self
            .fields
            .iter()
            .map(|(_, i)| json_ready(batch.column(*i), batch.schema().field(*i).name()))
            .collect::<Result<_, _>>()?;
        let key_array = json_ready(
            batch.column(self.key_column),
            batch.schema().field(self.key_column).name(),
        )?;
        let mut out = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let mut fields = Map::with_capacity(self.fields.len());
            for ((target, _), column) in self.fields.iter().zip(&columns) {
                if let Some(value) = cell(column.as_ref(), row) {
                    fields.insert(target.clone(), value);
                }
            }
            let key = cell(key_array.as_ref(), row).map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
            out.push(Contact {
                row: first_row + row as u64,
                key,
                fields,
            });
        }
        Ok(out)
    }

    /// What identifies the contact on the platform, kept so a later removal can name it.
    /// `None`: the row has no identifier and cannot be sent.
    pub fn identity(&self, contact: &Contact) -> Option<Map<String, Value>> {
        let identifiers = self.preset.identifiers();
        if identifiers.is_empty() {
            let key = contact.key.clone()?;
            let mut identity = Map::new();
            let value = contact
                .fields
                .get(&self.generic_identity)
                .cloned()
                .unwrap_or(Value::String(key));
            identity.insert(self.generic_identity.clone(), value);
            return Some(identity);
        }
        let identity: Map<String, Value> = identifiers
            .iter()
            .filter_map(|id| contact.fields.get(*id).map(|v| (id.to_string(), v.clone())))
            .collect();
        (!identity.is_empty()).then_some(identity)
    }
}

/// A stable fingerprint of the mapped values (as `serde_json::to_vec` writes them): what
/// `mode: diff` compares between runs.
pub fn content_hash(fields_json: &[u8]) -> String {
    hex(&Sha256::digest(fields_json)[..16])
}

/// The column as a type `cell` reads: dates, times and other types become text, decimals floats.
fn json_ready(array: &ArrayRef, name: &str) -> Result<ArrayRef, String> {
    let target = match array.data_type() {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Null => return Ok(array.clone()),
        DataType::Float16 | DataType::Decimal128(..) | DataType::Decimal256(..) => {
            DataType::Float64
        }
        _ => DataType::Utf8,
    };
    cast(array, &target).map_err(|e| {
        format!(
            "column `{name}` has type {}, which cannot be sent as JSON: {e}; cast it first (clean: cast)",
            array.data_type()
        )
    })
}

fn float(value: f64) -> Option<Value> {
    Number::from_f64(value).map(Value::Number)
}

/// One cell as JSON; `None` for null (and for NaN or infinity, which JSON cannot hold).
fn cell(array: &dyn Array, row: usize) -> Option<Value> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Float32 => float(array.as_primitive::<Float32Type>().value(row) as f64)?,
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row))?,
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(row).to_string()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int64, false),
            Field::new("mail", DataType::Utf8, true),
            Field::new("signup", DataType::Date32, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a@example.com"), None])),
                Arc::new(Date32Array::from(vec![Some(19_723), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn maps_columns_to_fields_and_leaves_nulls_out() {
        let b = batch();
        let fields: IndexMap<String, String> = [
            ("email".to_string(), "mail".to_string()),
            ("signed_up".to_string(), "signup".to_string()),
        ]
        .into_iter()
        .collect();
        let mapping = Mapping::new(
            Some(&fields),
            Some("customer_id"),
            &b.schema(),
            Preset::Klaviyo,
        )
        .unwrap();
        let contacts = mapping.contacts(&b, 1).unwrap();
        assert_eq!(contacts[0].key.as_deref(), Some("1"));
        assert_eq!(
            Value::Object(contacts[0].fields.clone()),
            serde_json::json!({"email": "a@example.com", "signed_up": "2024-01-01"})
        );
        assert!(mapping.identity(&contacts[0]).is_some());
        // Row 2 has no email: it cannot be sent to Klaviyo.
        assert!(mapping.identity(&contacts[1]).is_none());
        assert_eq!(contacts[1].row, 2);
    }

    #[test]
    fn unknown_columns_and_missing_identifiers_are_explained() {
        let b = batch();
        let fields: IndexMap<String, String> = [("email".to_string(), "e_mail".to_string())]
            .into_iter()
            .collect();
        let error = Mapping::new(Some(&fields), None, &b.schema(), Preset::Klaviyo).unwrap_err();
        assert!(
            error.contains("`fields.email`") && error.contains("e_mail"),
            "{error}"
        );
        let fields: IndexMap<String, String> = [("segment".to_string(), "mail".to_string())]
            .into_iter()
            .collect();
        let error = Mapping::new(Some(&fields), None, &b.schema(), Preset::Braze).unwrap_err();
        assert!(error.contains("external_id"), "{error}");
    }

    #[test]
    fn hash_changes_with_any_mapped_value() {
        let mut a = Map::new();
        a.insert("segment".into(), Value::String("A".into()));
        let mut b = a.clone();
        let hash = |m: &Map<String, Value>| content_hash(&serde_json::to_vec(m).unwrap());
        assert_eq!(hash(&a), hash(&b));
        b.insert("segment".into(), Value::String("B".into()));
        assert_ne!(hash(&a), hash(&b));
    }
}
