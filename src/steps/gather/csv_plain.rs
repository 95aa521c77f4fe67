//! Decoding quote-free CSV lines straight into Arrow arrays.
//!
//! Without quotes a field is the bytes between two delimiters or line ends, so a vectorised
//! search finds every field of a piece in one pass and each value is parsed in place,
//! by the same Arrow parsers that Arrow's CSV reader uses. The only value not handed to Arrow's
//! parser is a `YYYY-MM-DD` date, the common case, which is converted directly.
//!
//! This is a fast path, not a second reader: whatever it is not sure of (a row with the wrong
//! number of fields, a value that does not parse, bytes that are not UTF-8) makes it return
//! `None`, and the caller decodes the piece with Arrow's reader, which gives the rows or the
//! error it always gives. So the batches are always those Arrow's reader makes.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{ArrayRef, PrimitiveBuilder, StringBuilder};
use datafusion::arrow::compute::kernels::cast_utils::Parser;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, SchemaRef, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::temporal_conversions::UNIX_EPOCH_DAY;

/// The rows of `bytes` (whole lines without a quote) in batches of `batch_rows`, or `None` when
/// Arrow's reader must decide (see the module comment): also when a column is of a type this
/// decoder does not build, or the delimiter cannot be told from a line end. Empty lines hold
/// no row, as in Arrow's reader; `\n`, `\r` and `\r\n` all end a line.
pub fn decode(
    bytes: &[u8],
    schema: &SchemaRef,
    delimiter: u8,
    batch_rows: usize,
) -> Option<Vec<RecordBatch>> {
    // Text offsets are 32-bit; pieces are megabytes.
    if matches!(delimiter, b'\n' | b'\r' | b'"') || bytes.len() > i32::MAX as usize {
        return None;
    }
    let mut columns = schema
        .fields()
        .iter()
        .map(|f| Column::new(f.data_type(), batch_rows))
        .collect::<Option<Vec<Column>>>()?;
    // Delimiters and line ends are ASCII, so every field of valid UTF-8 is valid UTF-8.
    let text = std::str::from_utf8(bytes).ok()?;
    let width = columns.len();
    let mut batches = Vec::new();
    let mut rows = 0;
    let mut field = 0;
    let mut start = 0;
    let ends = field_ends(bytes, delimiter).chain(std::iter::once(bytes.len()));
    for end in ends {
        let line_end = end == bytes.len() || bytes[end] != delimiter;
        if line_end && field == 0 && end == start {
            // An empty line (or the `\n` of a `\r\n`).
            start = end + 1;
            continue;
        }
        if field >= width || (line_end && field + 1 != width) {
            return None;
        }
        if !columns[field].push(&text[start..end]) {
            return None;
        }
        start = end + 1;
        if line_end {
            field = 0;
            rows += 1;
            if rows == batch_rows {
                batches.push(finish(schema, &mut columns)?);
                rows = 0;
            }
        } else {
            field += 1;
        }
    }
    if rows > 0 {
        batches.push(finish(schema, &mut columns)?);
    }
    Some(batches)
}

/// The positions of every delimiter, `\n` and `\r` in `bytes`, in order.
///
/// Fields are a few bytes long, so `memchr3_iter`, which restarts its search after each match,
/// spends most of its time starting; comparing 16 bytes at once into a bit mask and walking
/// its bits is about four times faster on the benchmark's files. SSE2 is part of x86-64, so no
/// detection is needed; other targets use memchr.
fn field_ends(bytes: &[u8], delimiter: u8) -> impl Iterator<Item = usize> + '_ {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::FieldEnds::new(bytes, delimiter)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        memchr::memchr3_iter(delimiter, b'\n', b'\r', bytes)
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };

    pub struct FieldEnds<'a> {
        bytes: &'a [u8],
        delimiter: u8,
        /// Where the 16 bytes of `hits` start.
        block: usize,
        /// The block's bytes that are still to be yielded, one bit each.
        hits: u32,
    }

    impl<'a> FieldEnds<'a> {
        pub fn new(bytes: &'a [u8], delimiter: u8) -> FieldEnds<'a> {
            let mut ends = FieldEnds {
                bytes,
                delimiter,
                block: 0,
                hits: 0,
            };
            ends.hits = ends.hits_at(0);
            ends
        }

        /// The bit mask of the delimiters and line ends in the 16 bytes from `block` (fewer
        /// at the end of the bytes).
        fn hits_at(&self, block: usize) -> u32 {
            let rest = &self.bytes[block.min(self.bytes.len())..];
            if rest.len() < 16 {
                return rest.iter().enumerate().fold(0, |mask, (i, b)| {
                    let hit = *b == self.delimiter || *b == b'\n' || *b == b'\r';
                    mask | (u32::from(hit) << i)
                });
            }
            // SAFETY: SSE2 is enabled for the target (see the `cfg`), `rest` holds at least 16
            // bytes, and the load has no alignment requirement.
            unsafe {
                let chunk = _mm_loadu_si128(rest.as_ptr().cast::<__m128i>());
                let hits = _mm_or_si128(
                    _mm_or_si128(
                        _mm_cmpeq_epi8(chunk, _mm_set1_epi8(self.delimiter as i8)),
                        _mm_cmpeq_epi8(chunk, _mm_set1_epi8(b'\n' as i8)),
                    ),
                    _mm_cmpeq_epi8(chunk, _mm_set1_epi8(b'\r' as i8)),
                );
                _mm_movemask_epi8(hits) as u32
            }
        }
    }

    impl Iterator for FieldEnds<'_> {
        type Item = usize;

        fn next(&mut self) -> Option<usize> {
            while self.hits == 0 {
                self.block += 16;
                if self.block >= self.bytes.len() {
                    return None;
                }
                self.hits = self.hits_at(self.block);
            }
            let at = self.block + self.hits.trailing_zeros() as usize;
            self.hits &= self.hits - 1;
            Some(at)
        }
    }
}

fn finish(schema: &SchemaRef, columns: &mut [Column]) -> Option<RecordBatch> {
    let arrays = columns.iter_mut().map(Column::finish).collect();
    RecordBatch::try_new(schema.clone(), arrays).ok()
}

/// One column of the batch being built.
enum Column {
    Text(StringBuilder),
    Int8(PrimitiveBuilder<Int8Type>),
    Int16(PrimitiveBuilder<Int16Type>),
    Int32(PrimitiveBuilder<Int32Type>),
    Int64(PrimitiveBuilder<Int64Type>),
    UInt8(PrimitiveBuilder<UInt8Type>),
    UInt16(PrimitiveBuilder<UInt16Type>),
    UInt32(PrimitiveBuilder<UInt32Type>),
    UInt64(PrimitiveBuilder<UInt64Type>),
    Float32(PrimitiveBuilder<Float32Type>),
    Float64(PrimitiveBuilder<Float64Type>),
    Date32(PrimitiveBuilder<Date32Type>),
}

impl Column {
    /// An empty column of `data_type` for `rows` rows; `None` for a type this decoder leaves
    /// to Arrow's reader.
    fn new(data_type: &DataType, rows: usize) -> Option<Column> {
        fn builder<T: ArrowPrimitiveType>(rows: usize) -> PrimitiveBuilder<T> {
            PrimitiveBuilder::with_capacity(rows)
        }
        Some(match data_type {
            DataType::Utf8 => Column::Text(StringBuilder::with_capacity(rows, 0)),
            DataType::Int8 => Column::Int8(builder(rows)),
            DataType::Int16 => Column::Int16(builder(rows)),
            DataType::Int32 => Column::Int32(builder(rows)),
            DataType::Int64 => Column::Int64(builder(rows)),
            DataType::UInt8 => Column::UInt8(builder(rows)),
            DataType::UInt16 => Column::UInt16(builder(rows)),
            DataType::UInt32 => Column::UInt32(builder(rows)),
            DataType::UInt64 => Column::UInt64(builder(rows)),
            DataType::Float32 => Column::Float32(builder(rows)),
            DataType::Float64 => Column::Float64(builder(rows)),
            DataType::Date32 => Column::Date32(builder(rows)),
            _ => return None,
        })
    }

    /// Adds one value (empty is null, as in Arrow's reader); false when it does not parse.
    fn push(&mut self, value: &str) -> bool {
        match self {
            Column::Text(b) => {
                if value.is_empty() {
                    b.append_null();
                } else {
                    b.append_value(value);
                }
                true
            }
            Column::Int8(b) => push_parsed(b, value),
            Column::Int16(b) => push_parsed(b, value),
            Column::Int32(b) => push_parsed(b, value),
            Column::Int64(b) => push_parsed(b, value),
            Column::UInt8(b) => push_parsed(b, value),
            Column::UInt16(b) => push_parsed(b, value),
            Column::UInt32(b) => push_parsed(b, value),
            Column::UInt64(b) => push_parsed(b, value),
            Column::Float32(b) => push_parsed(b, value),
            Column::Float64(b) => push_parsed(b, value),
            Column::Date32(b) => {
                if value.is_empty() {
                    b.append_null();
                    return true;
                }
                match iso_date_days(value.as_bytes()).or_else(|| Date32Type::parse(value)) {
                    Some(days) => {
                        b.append_value(days);
                        true
                    }
                    None => false,
                }
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Text(b) => Arc::new(b.finish()),
            Column::Int8(b) => Arc::new(b.finish()),
            Column::Int16(b) => Arc::new(b.finish()),
            Column::Int32(b) => Arc::new(b.finish()),
            Column::Int64(b) => Arc::new(b.finish()),
            Column::UInt8(b) => Arc::new(b.finish()),
            Column::UInt16(b) => Arc::new(b.finish()),
            Column::UInt32(b) => Arc::new(b.finish()),
            Column::UInt64(b) => Arc::new(b.finish()),
            Column::Float32(b) => Arc::new(b.finish()),
            Column::Float64(b) => Arc::new(b.finish()),
            Column::Date32(b) => Arc::new(b.finish()),
        }
    }
}

fn push_parsed<T: ArrowPrimitiveType + Parser>(
    builder: &mut PrimitiveBuilder<T>,
    value: &str,
) -> bool {
    if value.is_empty() {
        builder.append_null();
        return true;
    }
    match T::parse(value) {
        Some(parsed) => {
            builder.append_value(parsed);
            true
        }
        None => false,
    }
}

/// The days since 1970-01-01 of a valid `YYYY-MM-DD` date; `None` for anything else, which
/// Arrow's parser then decides on.
fn iso_date_days(value: &[u8]) -> Option<i32> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *value else {
        return None;
    };
    let digit = |b: u8| b.checked_sub(b'0').filter(|d| *d < 10).map(u32::from);
    let year = digit(y0)? * 1000 + digit(y1)? * 100 + digit(y2)? * 10 + digit(y3)?;
    let month = digit(m0)? * 10 + digit(m1)?;
    let day = digit(d0)? * 10 + digit(d1)?;
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    // Arrow's date parser counts the same way.
    Some(date.num_days_from_ce() - UNIX_EPOCH_DAY as i32)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::csv::ReaderBuilder;
    use datafusion::arrow::datatypes::{Field, Schema};
    use proptest::prelude::*;

    use super::*;

    const TYPES: [DataType; 12] = [
        DataType::Utf8,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float32,
        DataType::Float64,
        DataType::Date32,
    ];

    fn schema_of(types: &[DataType]) -> SchemaRef {
        let fields: Vec<Field> = types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn arrow_reader(
        bytes: &[u8],
        schema: &SchemaRef,
        delimiter: u8,
        batch_rows: usize,
    ) -> Result<Vec<RecordBatch>, datafusion::arrow::error::ArrowError> {
        ReaderBuilder::new(schema.clone())
            .with_header(false)
            .with_delimiter(delimiter)
            .with_batch_size(batch_rows)
            .build_buffered(bytes)?
            .collect()
    }

    /// A value for a column of `data_type`: well-formed for the type, or, in a dirty file,
    /// sometimes empty (null), padded, out of range or not a value of the type at all.
    fn value(data_type: DataType, dirty: bool) -> BoxedStrategy<String> {
        fn shown<T: std::fmt::Display>(
            s: impl Strategy<Value = T> + 'static,
        ) -> BoxedStrategy<String> {
            s.prop_map(|v| v.to_string()).boxed()
        }
        let typical = match data_type {
            DataType::Utf8 => "[a-zA-Z0-9 .@é'\t_-]{0,12}".boxed(),
            DataType::Float32 | DataType::Float64 => prop_oneof![
                shown(any::<f64>()),
                (-100_000i64..100_000, 0u32..100).prop_map(|(i, c)| format!("{i}.{c:02}")),
                any::<f32>().prop_map(|f| format!("{f:e}")),
            ]
            .boxed(),
            DataType::Date32 => (0i32..10_000, 1i32..=12, 1i32..=28)
                .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
                .boxed(),
            DataType::Int8 => shown(any::<i8>()),
            DataType::Int16 => shown(any::<i16>()),
            DataType::Int32 => shown(any::<i32>()),
            DataType::Int64 => shown(any::<i64>()),
            DataType::UInt8 => shown(any::<u8>()),
            DataType::UInt16 => shown(any::<u16>()),
            DataType::UInt32 => shown(any::<u32>()),
            _ => shown(any::<u64>()),
        };
        if !dirty {
            return typical;
        }
        let odd = prop_oneof![
            Just(String::new()),
            Just("x".to_string()),
            Just(" 7".to_string()),
            Just("7 ".to_string()),
            Just("+3".to_string()),
            Just("-0".to_string()),
            Just("-1".to_string()),
            Just("300".to_string()),
            Just("1.5".to_string()),
            Just("1e3".to_string()),
            Just("NaN".to_string()),
            Just("inf".to_string()),
            Just("99999999999999999999".to_string()),
            Just("2024-02-29".to_string()),
            Just("2023-02-29".to_string()),
            Just("2021-04-31".to_string()),
            Just("2021-1-5".to_string()),
            Just("20210105".to_string()),
            Just("2021-01-05T10:00:00".to_string()),
            Just("+10000-01-01".to_string()),
            Just("0000-01-01".to_string()),
            shown(any::<i64>()),
        ];
        prop_oneof![30 => typical, 1 => odd].boxed()
    }

    /// A quote-free file: its column types, delimiter and bytes. A clean file holds only
    /// well-formed values; a dirty one also odd values, and rows of the wrong width.
    fn file() -> impl Strategy<Value = (Vec<DataType>, u8, Vec<u8>)> {
        let types = prop::collection::vec(prop::sample::select(TYPES.to_vec()), 1..=5);
        let delimiter = prop::sample::select(vec![b',', b';', b'\t', b'|']);
        (types, delimiter, any::<bool>()).prop_flat_map(|(types, delimiter, dirty)| {
            let row = types
                .iter()
                .map(|t| value(t.clone(), dirty))
                .collect::<Vec<_>>();
            let wrong_width = if dirty {
                prop_oneof![60 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)].boxed()
            } else {
                Just(0i8).boxed()
            };
            let line = (
                row,
                // The line end, empty lines after it, and a field too many or too few.
                prop::sample::select(vec!["\n", "\r\n", "\r"]),
                prop_oneof![12 => Just(0usize), 1 => 1usize..3],
                wrong_width,
            );
            (
                Just(types),
                Just(delimiter),
                prop::collection::vec(line, 0..40),
                any::<bool>(),
            )
                .prop_map(move |(types, delimiter, lines, last_line_ended)| {
                    let mut text = String::new();
                    let count = lines.len();
                    for (n, (mut fields, end, empty_lines, wrong_width)) in
                        lines.into_iter().enumerate()
                    {
                        match wrong_width {
                            -1 => {
                                fields.pop();
                            }
                            1 => fields.push("1".into()),
                            _ => {}
                        }
                        let fields: Vec<String> = fields
                            .into_iter()
                            .map(|f| f.replace(delimiter as char, ""))
                            .collect();
                        text.push_str(&fields.join(&(delimiter as char).to_string()));
                        if n + 1 < count || last_line_ended {
                            text.push_str(end);
                            for _ in 0..empty_lines {
                                text.push_str(end);
                            }
                        }
                    }
                    (types, delimiter, text.into_bytes())
                })
        })
    }

    /// The decoder gives exactly the batches of Arrow's reader when that reader reads the file,
    /// and leaves it to that reader (and its error) when it does not; and it does decode most
    /// files, so the equality is checked on many rows, not only on files that both refuse.
    #[test]
    fn decodes_as_arrows_reader_or_leaves_the_piece_to_it() {
        use proptest::test_runner::{Config, TestCaseError, TestRunner};
        let cases = 2000;
        let mut runner = TestRunner::new(Config::with_cases(cases));
        let decoded = std::cell::Cell::new((0u32, 0usize));
        let files = (file(), 1usize..12);
        let result = runner.run(&files, |((types, delimiter, bytes), batch_rows)| {
            let schema = schema_of(&types);
            let ours = decode(&bytes, &schema, delimiter, batch_rows);
            let arrows = arrow_reader(&bytes, &schema, delimiter, batch_rows);
            let text = String::from_utf8_lossy(&bytes);
            match (ours, arrows) {
                (Some(ours), Ok(arrows)) => {
                    prop_assert_eq!(&ours, &arrows, "{:?}", text);
                    let (files, rows) = decoded.get();
                    let rows = rows + ours.iter().map(|b| b.num_rows()).sum::<usize>();
                    decoded.set((files + 1, rows));
                }
                (None, Err(_)) => {}
                (Some(_), Err(error)) => {
                    return Err(TestCaseError::fail(format!(
                        "Arrow's reader fails ({error}) but not ours: {text:?}"
                    )));
                }
                (None, Ok(_)) => {
                    return Err(TestCaseError::fail(format!(
                        "ours gave up on a file Arrow reads: {text:?}"
                    )));
                }
            }
            Ok(())
        });
        if let Err(failure) = result {
            panic!("{failure}");
        }
        let (files, rows) = decoded.get();
        assert!(files > cases / 2, "only {files} of {cases} files decoded");
        assert!(rows > 10_000, "only {rows} rows decoded");
    }

    proptest! {
        /// The 16-byte scan finds exactly what memchr finds, at every length and alignment.
        #[test]
        fn field_ends_are_memchrs_matches(
            bytes in prop::collection::vec(
                prop_oneof![4 => any::<u8>(), 1 => Just(b','), 1 => Just(b'\n'), 1 => Just(b'\r')],
                0..300,
            ),
            start in 0usize..17,
            delimiter in prop::sample::select(vec![b',', b';', b'\t', b'|', 0u8, 0xff]),
        ) {
            let bytes = &bytes[start.min(bytes.len())..];
            let ours: Vec<usize> = field_ends(bytes, delimiter).collect();
            let memchrs: Vec<usize> = memchr::memchr3_iter(delimiter, b'\n', b'\r', bytes).collect();
            prop_assert_eq!(ours, memchrs);
        }
    }

    #[test]
    fn every_date_of_four_centuries_is_the_day_arrows_parser_gives() {
        let mut checked = 0;
        for year in (0..10_000).step_by(7).chain(1600..2400) {
            for month in 1..=12 {
                for day in 1..=31 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    let ours = iso_date_days(text.as_bytes());
                    // Ours declines only what Arrow's parser must decide: days that do not exist.
                    assert_eq!(ours.is_some(), Date32Type::parse(&text).is_some(), "{text}");
                    if let Some(days) = ours {
                        assert_eq!(Some(days), Date32Type::parse(&text), "{text}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 300_000, "{checked} dates");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_left_to_arrows_reader() {
        let schema = schema_of(&[DataType::Int64, DataType::Utf8]);
        assert!(decode(b"1,ok\n2,caf\xe9\n", &schema, b',', 8).is_none());
        assert!(decode("1,ok\n2,café\n".as_bytes(), &schema, b',', 8).is_some());
    }

    #[test]
    fn the_benchmarks_transaction_lines_decode_with_every_type_and_null() {
        let schema = schema_of(&[
            DataType::Int64,
            DataType::Utf8,
            DataType::Date32,
            DataType::Int64,
            DataType::Float64,
        ]);
        let text = b"0,C0000001,1997-01-01,2,29.98\r\n1,,2024-02-29,,\n\n2,C0000002,,1,0.5";
        let batches = decode(text, &schema, b',', 2).expect("decoded");
        assert_eq!(
            batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(batches, arrow_reader(text, &schema, b',', 2).unwrap());
        assert_eq!(batches[0].column(1).null_count(), 1);
    }

    #[test]
    fn a_delimiter_that_ends_lines_or_quotes_and_a_boolean_column_are_left_to_arrows_reader() {
        let schema = schema_of(&[DataType::Utf8]);
        for delimiter in [b'\n', b'\r', b'"'] {
            assert!(decode(b"a\nb\n", &schema, delimiter, 8).is_none());
        }
        assert!(decode(b"a\nb\n", &schema, b',', 8).is_some());
        let schema = schema_of(&[DataType::Utf8, DataType::Boolean]);
        let bytes = b"a,true\nb,false\n";
        assert!(decode(bytes, &schema, b',', 8).is_none());
        assert!(arrow_reader(bytes, &schema, b',', 8).is_ok());
    }
}
