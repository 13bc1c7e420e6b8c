//! Many records at once: reading an import file (JSON Lines or CSV) into
//! record changes with the line each starts on, storing them in batches,
//! and writing every record out again in either format. The CLI (through
//! the control channel) and the desktop app (in process) share it; each
//! gives the function that stores a batch or fetches a page.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::{BufRead, Write};
use std::path::Path;

use dan_core::{FieldValue, RecordView};
use serde::{Deserialize, Serialize};

use crate::api::PutRecord;

/// Records per import batch (one transaction each).
pub const IMPORT_BATCH: usize = 1000;

/// Largest import batch, in bytes of JSON (the control channel takes 1 MiB
/// per request).
pub const IMPORT_BATCH_BYTES: usize = 512 * 1024;

/// Records per page of an export.
pub const EXPORT_PAGE: u32 = 1000;

/// A file format for import and export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkFormat {
    /// One JSON object per line (`record put`'s fields for import, a
    /// record as `record get` shows it for export).
    Jsonl,
    /// A header row and one row per record: `id`, `collection`, `title`,
    /// `tags` (separated by commas), then one column per field, named
    /// `name`, `name:int` or `name:bool` for whole numbers and true/false.
    Csv,
}

impl BulkFormat {
    /// The format a file name says (`.csv` is CSV, anything else JSON
    /// Lines).
    pub fn for_path(path: &Path) -> Self {
        let csv = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
        if csv {
            BulkFormat::Csv
        } else {
            BulkFormat::Jsonl
        }
    }
}

impl std::str::FromStr for BulkFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "jsonl" => Ok(BulkFormat::Jsonl),
            "csv" => Ok(BulkFormat::Csv),
            other => Err(format!("unknown format `{other}`: use jsonl or csv")),
        }
    }
}

/// Why an import or export stopped.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// A row of the file is not a record; nothing was stored.
    #[error("line {line}: {problem} (nothing was imported)")]
    Row {
        /// The line the row starts on.
        line: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// The instance refused a batch; the batches before it are stored.
    #[error(
        "the batch from line {from_line} was not stored ({stored} of {total} records before it were): {problem}; fix it and import again from line {from_line}"
    )]
    Batch {
        /// The line the refused batch starts on.
        from_line: u64,
        /// Records stored before it.
        stored: u64,
        /// Records in the file.
        total: u64,
        /// Why it was refused.
        problem: String,
    },
    /// Reading or writing a file, or fetching a page, failed.
    #[error("{0}")]
    Io(String),
}

/// How far an import or export got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BulkProgress {
    /// Records done.
    pub done: u64,
    /// Records in all, when known.
    pub total: Option<u64>,
}

/// One record change read from an import file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRow {
    /// The line it starts on (1 for the first).
    pub line: u64,
    /// The change.
    pub record: PutRecord,
}

/// Reads every row of an import file in `format`, skipping those that
/// start before line `from_line`. A row that is not a record (or is larger
/// than a batch may be) stops it with its line number.
pub fn read_import(
    reader: impl BufRead,
    format: BulkFormat,
    from_line: u64,
) -> Result<Vec<ImportRow>, BulkError> {
    let rows = match format {
        BulkFormat::Jsonl => read_jsonl(reader, from_line)?,
        BulkFormat::Csv => read_csv(reader, from_line)?,
    };
    for row in &rows {
        if json_len(&row.record) > IMPORT_BATCH_BYTES {
            return Err(BulkError::Row {
                line: row.line,
                problem: "a record of more than 512 KiB".into(),
            });
        }
    }
    Ok(rows)
}

fn json_len(record: &PutRecord) -> usize {
    serde_json::to_vec(record).map_or(usize::MAX, |bytes| bytes.len())
}

fn read_jsonl(reader: impl BufRead, from_line: u64) -> Result<Vec<ImportRow>, BulkError> {
    let mut rows = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line_no = n as u64 + 1;
        let line = line.map_err(|e| BulkError::Io(format!("reading line {line_no}: {e}")))?;
        if line_no < from_line || line.trim().is_empty() {
            continue;
        }
        if line.len() > IMPORT_BATCH_BYTES {
            return Err(BulkError::Row {
                line: line_no,
                problem: "a record of more than 512 KiB".into(),
            });
        }
        let record = serde_json::from_str(&line).map_err(|e| BulkError::Row {
            line: line_no,
            problem: format!("not a record: {e}"),
        })?;
        rows.push(ImportRow {
            line: line_no,
            record,
        });
    }
    Ok(rows)
}

/// A CSV column: what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Column {
    Id,
    Collection,
    Title,
    Tags,
    Field(String, Kind),
}

/// The kind of a field column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Bool,
}

impl Column {
    fn of_header(name: &str) -> Self {
        match name.trim() {
            "id" => Column::Id,
            "collection" => Column::Collection,
            "title" => Column::Title,
            "tags" => Column::Tags,
            other => match other.rsplit_once(':') {
                Some((field, "int")) => Column::Field(field.into(), Kind::Int),
                Some((field, "bool")) => Column::Field(field.into(), Kind::Bool),
                Some((field, "text")) => Column::Field(field.into(), Kind::Text),
                _ => Column::Field(other.into(), Kind::Text),
            },
        }
    }

    fn header(&self) -> String {
        match self {
            Column::Id => "id".into(),
            Column::Collection => "collection".into(),
            Column::Title => "title".into(),
            Column::Tags => "tags".into(),
            Column::Field(name, Kind::Text) => name.clone(),
            Column::Field(name, Kind::Int) => format!("{name}:int"),
            Column::Field(name, Kind::Bool) => format!("{name}:bool"),
        }
    }
}

fn read_csv(reader: impl BufRead, from_line: u64) -> Result<Vec<ImportRow>, BulkError> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let columns: Vec<Column> = csv
        .headers()
        .map_err(|e| BulkError::Row {
            line: 1,
            problem: format!("not a CSV header: {e}"),
        })?
        .iter()
        .map(Column::of_header)
        .collect();
    let mut rows = Vec::new();
    for row in csv.records() {
        let row = row.map_err(|e| BulkError::Row {
            line: e.position().map_or(0, |p| p.line()),
            problem: format!("not a CSV row: {e}"),
        })?;
        let line = row.position().map_or(0, |p| p.line());
        if line < from_line || row.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let record =
            csv_record(&columns, &row).map_err(|problem| BulkError::Row { line, problem })?;
        rows.push(ImportRow { line, record });
    }
    Ok(rows)
}

fn csv_record(columns: &[Column], row: &csv::StringRecord) -> Result<PutRecord, String> {
    let mut record = PutRecord::default();
    for (column, cell) in columns.iter().zip(row.iter()) {
        if cell.is_empty() {
            continue;
        }
        let text = unescape_formula(cell);
        match column {
            Column::Id => record.id = Some(cell.into()),
            Column::Collection => record.collection = Some(text.into()),
            Column::Title => record.title = Some(text.into()),
            Column::Tags => {
                record.tags = Some(
                    text.split(',')
                        .map(str::trim)
                        .filter(|tag| !tag.is_empty())
                        .map(str::to_owned)
                        .collect(),
                );
            }
            Column::Field(name, kind) => {
                let value = match kind {
                    Kind::Text => FieldValue::Text(text.into()),
                    Kind::Int => FieldValue::Int(cell.trim().parse().map_err(|_| {
                        format!("`{name}` holds whole numbers, and `{cell}` is not one")
                    })?),
                    Kind::Bool => match cell.trim() {
                        "true" => FieldValue::Bool(true),
                        "false" => FieldValue::Bool(false),
                        _ => {
                            return Err(format!(
                                "`{name}` holds true or false, and `{cell}` is neither"
                            ));
                        }
                    },
                };
                record.fields.insert(name.clone(), Some(value));
            }
        }
    }
    Ok(record)
}

/// Stores `rows` in batches of at most [`IMPORT_BATCH`] records and
/// [`IMPORT_BATCH_BYTES`] bytes with `store`, telling `progress` after
/// each. Returns how many were stored.
pub async fn import_rows<S, F>(
    rows: Vec<ImportRow>,
    mut store: S,
    mut progress: impl FnMut(BulkProgress),
) -> Result<u64, BulkError>
where
    S: FnMut(Vec<PutRecord>) -> F,
    F: Future<Output = Result<(), String>>,
{
    let total = rows.len() as u64;
    let mut stored = 0;
    let mut rows = rows.into_iter().peekable();
    while let Some(first) = rows.next() {
        let from_line = first.line;
        let mut bytes = json_len(&first.record);
        let mut batch = vec![first.record];
        while let Some(next) = rows.peek() {
            let size = json_len(&next.record);
            if batch.len() == IMPORT_BATCH || bytes + size > IMPORT_BATCH_BYTES {
                break;
            }
            bytes += size;
            batch.extend(rows.next().map(|row| row.record));
        }
        let count = batch.len() as u64;
        store(batch).await.map_err(|problem| BulkError::Batch {
            from_line,
            stored,
            total,
            problem,
        })?;
        stored += count;
        progress(BulkProgress {
            done: stored,
            total: Some(total),
        });
    }
    Ok(stored)
}

/// Writes every record that `page` gives to `out` in `format`. `page`
/// fetches the records after an id (or from the first), in id order, up to
/// [`EXPORT_PAGE`] at a time; each page starts after the last id of the one
/// before, so records written meanwhile never make it skip or repeat one,
/// and it stops at the first empty page (a page may come back short when
/// the store skips a damaged row). CSV reads the pages twice: first for
/// the field columns. Returns how many were written.
pub async fn export_records<P, F>(
    format: BulkFormat,
    mut page: P,
    out: &mut impl Write,
    total: Option<u64>,
    mut progress: impl FnMut(BulkProgress),
) -> Result<u64, BulkError>
where
    P: FnMut(Option<String>) -> F,
    F: Future<Output = Result<Vec<RecordView>, String>>,
{
    let mut sink = match format {
        BulkFormat::Jsonl => Sink::Jsonl(out),
        BulkFormat::Csv => {
            let mut kinds: BTreeMap<String, BTreeSet<u8>> = BTreeMap::new();
            each_page(&mut page, |records| {
                for record in records {
                    for (name, value) in &record.fields {
                        kinds
                            .entry(name.clone())
                            .or_default()
                            .insert(kind_of(value) as u8);
                    }
                }
                Ok(())
            })
            .await?;
            let mut columns = vec![Column::Id, Column::Collection, Column::Title, Column::Tags];
            columns.extend(kinds.into_iter().map(|(name, kinds)| {
                let kind = match kinds.into_iter().collect::<Vec<_>>()[..] {
                    [k] if k == Kind::Int as u8 => Kind::Int,
                    [k] if k == Kind::Bool as u8 => Kind::Bool,
                    _ => Kind::Text,
                };
                Column::Field(name, kind)
            }));
            let mut writer = csv::Writer::from_writer(out);
            writer
                .write_record(columns.iter().map(Column::header))
                .map_err(written)?;
            Sink::Csv(columns, Box::new(writer))
        }
    };
    let mut done = 0;
    each_page(&mut page, |records| {
        for record in records {
            sink.write(record)?;
        }
        done += records.len() as u64;
        progress(BulkProgress { done, total });
        Ok(())
    })
    .await?;
    sink.flush()?;
    Ok(done)
}

fn written(e: impl std::fmt::Display) -> BulkError {
    BulkError::Io(format!("writing the export: {e}"))
}

/// Where exported records go, in their format.
enum Sink<'a, W: Write> {
    Jsonl(&'a mut W),
    Csv(Vec<Column>, Box<csv::Writer<&'a mut W>>),
}

impl<W: Write> Sink<'_, W> {
    fn write(&mut self, record: &RecordView) -> Result<(), BulkError> {
        match self {
            Sink::Jsonl(out) => {
                let line = serde_json::to_string(record).map_err(written)?;
                writeln!(out, "{line}").map_err(written)
            }
            Sink::Csv(columns, writer) => writer
                .write_record(columns.iter().map(|c| csv_cell(c, record)))
                .map_err(written),
        }
    }

    fn flush(&mut self) -> Result<(), BulkError> {
        match self {
            Sink::Jsonl(out) => out.flush(),
            Sink::Csv(_, writer) => writer.flush(),
        }
        .map_err(written)
    }
}

/// Calls `each` with every page `page` gives, in id order, until an empty
/// one.
async fn each_page<P, F>(
    page: &mut P,
    mut each: impl FnMut(&[RecordView]) -> Result<(), BulkError>,
) -> Result<(), BulkError>
where
    P: FnMut(Option<String>) -> F,
    F: Future<Output = Result<Vec<RecordView>, String>>,
{
    let mut after = None;
    loop {
        let records = page(after.take()).await.map_err(BulkError::Io)?;
        let Some(last) = records.last() else {
            return Ok(());
        };
        after = Some(last.id.to_string());
        each(&records)?;
    }
}

fn kind_of(value: &FieldValue) -> Kind {
    match value {
        FieldValue::Text(_) => Kind::Text,
        FieldValue::Int(_) => Kind::Int,
        FieldValue::Bool(_) => Kind::Bool,
    }
}

fn csv_cell(column: &Column, record: &RecordView) -> String {
    match column {
        Column::Id => record.id.to_string(),
        Column::Collection => escape_formula(&record.collection),
        Column::Title => escape_formula(&record.title),
        Column::Tags => escape_formula(
            &record
                .tags
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Column::Field(name, _) => match record.fields.get(name) {
            None => String::new(),
            Some(FieldValue::Text(text)) => escape_formula(text),
            Some(FieldValue::Int(n)) => n.to_string(),
            Some(FieldValue::Bool(b)) => b.to_string(),
        },
    }
}

/// The characters a spreadsheet takes as the start of a formula in a cell
/// (and the quote that marks one as text).
const FORMULA_START: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// Text any member wrote, made safe to open in a spreadsheet: a cell that
/// would start a formula (`=HYPERLINK(…)`, which runs when the file is
/// opened) gets a leading `'`, which spreadsheets show as text;
/// [`unescape_formula`] takes it off again on import.
fn escape_formula(text: &str) -> String {
    if text.starts_with(FORMULA_START) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// A text cell as it was before [`escape_formula`].
fn unescape_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_START) => rest,
        _ => cell,
    }
}

impl crate::node::Node {
    /// Imports the records of the file at `path` (CSV when its name ends
    /// in `.csv`, JSON lines otherwise), telling `progress` after each
    /// batch. Returns how many were stored.
    pub async fn import_file(
        &self,
        path: &Path,
        progress: impl FnMut(BulkProgress),
    ) -> Result<u64, crate::NodeError> {
        let owned = path.to_owned();
        let read = crate::verify::off_the_workers(move || {
            let file = std::fs::File::open(&owned)
                .map_err(|e| BulkError::Io(format!("cannot open {}: {e}", owned.display())))?;
            read_import(
                std::io::BufReader::new(file),
                BulkFormat::for_path(&owned),
                1,
            )
        })
        .await
        .ok_or_else(|| BulkError::Io("the instance is stopping".into()))?;
        let rows = read?;
        let stored = import_rows(
            rows,
            |records| async move {
                self.import_records(records)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
            progress,
        )
        .await?;
        Ok(stored)
    }

    /// Writes every record that is not deleted to a file at `path` (CSV
    /// when its name ends in `.csv`, JSON lines otherwise), telling
    /// `progress` after each page. The file appears only once complete (it
    /// is written beside it first). Returns how many were written.
    pub async fn export_file(
        &self,
        path: &Path,
        progress: impl FnMut(BulkProgress),
    ) -> Result<u64, crate::NodeError> {
        let total = self
            .count_records(&dan_store::RecordQuery::default())
            .await?;
        let io = |source| crate::NodeError::Io {
            context: format!("cannot write {}", path.display()),
            source,
        };
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&partial).map_err(io)?);
        let written = export_records(
            BulkFormat::for_path(path),
            |after_id| {
                let query = dan_store::RecordQuery {
                    sort: dan_store::RecordSort::IdAsc,
                    limit: EXPORT_PAGE,
                    after_id,
                    ..Default::default()
                };
                async move { self.list_records(&query).await.map_err(|e| e.to_string()) }
            },
            &mut out,
            Some(total),
            progress,
        )
        .await;
        drop(out);
        match written {
            Ok(written) => {
                std::fs::rename(&partial, path).map_err(io)?;
                Ok(written)
            }
            Err(error) => {
                let _ = std::fs::remove_file(&partial);
                Err(error.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, fields: &[(&str, FieldValue)], tags: &[&str]) -> RecordView {
        RecordView {
            id: dan_core::RecordId::new(id).expect("id"),
            collection: "books".into(),
            title: format!("Title, \"{id}\""),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            deleted: false,
            created_at: 1,
            updated_at: 2,
            origin: dan_core::Keypair::from_secret([1; 32]).public(),
            version: dan_core::OpId::of(id.as_bytes()),
        }
    }

    /// Pages of `records` in id order, `size` at a time, as the store gives.
    fn pages(
        records: Vec<RecordView>,
        size: usize,
    ) -> impl FnMut(Option<String>) -> std::future::Ready<Result<Vec<RecordView>, String>> {
        move |after| {
            let page = records
                .iter()
                .filter(|r| after.as_deref().is_none_or(|a| r.id.as_str() > a))
                .take(size)
                .cloned()
                .collect();
            std::future::ready(Ok(page))
        }
    }

    async fn export(format: BulkFormat, records: Vec<RecordView>) -> String {
        let mut out = Vec::new();
        let written = export_records(format, pages(records.clone(), 2), &mut out, None, |_| {})
            .await
            .expect("export");
        assert_eq!(written, records.len() as u64);
        String::from_utf8(out).expect("utf-8")
    }

    #[tokio::test]
    async fn records_exported_as_csv_import_again_with_their_types() {
        let records = vec![
            view(
                "a",
                &[
                    ("pages", FieldValue::Int(412)),
                    ("read", FieldValue::Bool(true)),
                ],
                &["sf", "classic"],
            ),
            view(
                "b",
                &[
                    ("pages", FieldValue::Int(-3)),
                    ("note", FieldValue::Text("two\nlines, \"quoted\"".into())),
                ],
                &[],
            ),
            view("c", &[("read", FieldValue::Text("maybe".into()))], &["x"]),
        ];
        let csv = export(BulkFormat::Csv, records.clone()).await;
        assert!(
            csv.starts_with("id,collection,title,tags,note,pages:int,read\n"),
            "`read` holds both kinds, so it is text:\n{csv}"
        );
        let rows = read_import(csv.as_bytes(), BulkFormat::Csv, 1).expect("import");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[2].line, 5, "the row after a field over two lines");
        assert_eq!(rows[0].record.fields["pages"], Some(FieldValue::Int(412)));
        assert_eq!(
            rows[0].record.fields["read"],
            Some(FieldValue::Text("true".into()))
        );
        assert_eq!(
            rows[1].record.fields["note"],
            Some(FieldValue::Text("two\nlines, \"quoted\"".into()))
        );
        assert!(
            !rows[1].record.fields.contains_key("read"),
            "an empty cell sets nothing"
        );
        assert_eq!(rows[0].record.title.as_deref(), Some("Title, \"a\""));
        assert_eq!(
            rows[0].record.tags,
            Some(BTreeSet::from(["classic".to_owned(), "sf".to_owned()]))
        );
        assert_eq!(rows[1].record.tags, None);
    }

    // Attacker review: any member's text went into the CSV as it was, so
    // a title `=HYPERLINK(…)` ran as a formula in the spreadsheet of
    // whoever opened the export.
    #[tokio::test]
    async fn bad_input_text_that_would_start_a_formula_is_exported_as_text_and_imports_back() {
        let mut record = view("a", &[("note", FieldValue::Text("-1 day".into()))], &[]);
        record.title = "=HYPERLINK(\"http://evil.example\",\"click\")".into();
        let csv = export(BulkFormat::Csv, vec![record.clone()]).await;
        let row = csv.lines().nth(1).expect("a row");
        assert!(row.contains(",\"'=HYPERLINK("), "{row}");
        assert!(row.ends_with(",'-1 day"), "{row}");
        let rows = read_import(csv.as_bytes(), BulkFormat::Csv, 1).expect("import");
        assert_eq!(rows[0].record.title.as_deref(), Some(record.title.as_str()));
        assert_eq!(
            rows[0].record.fields["note"],
            Some(FieldValue::Text("-1 day".into()))
        );
        let plain = "collection,title\nbooks,'quoted on purpose\n";
        let rows = read_import(plain.as_bytes(), BulkFormat::Csv, 1).expect("import");
        assert_eq!(rows[0].record.title.as_deref(), Some("'quoted on purpose"));
    }

    #[tokio::test]
    async fn records_exported_as_json_lines_import_again() {
        let records = vec![
            view("a", &[("pages", FieldValue::Int(1))], &["t"]),
            view("b", &[], &[]),
        ];
        let jsonl = export(BulkFormat::Jsonl, records).await;
        let rows = read_import(jsonl.as_bytes(), BulkFormat::Jsonl, 1).expect("import");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 2);
        assert_eq!(rows[0].record.id.as_deref(), Some("a"));
        assert_eq!(rows[0].record.fields["pages"], Some(FieldValue::Int(1)));
    }

    #[test]
    fn bad_input_a_bad_row_is_reported_with_its_line_and_nothing_is_read() {
        let csv = "collection,title,pages:int\nbooks,Dune,412\nbooks,Emma,many\n";
        let error = read_import(csv.as_bytes(), BulkFormat::Csv, 1).expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("line 3: `pages` holds whole numbers, and `many` is not one"),
            "{error}"
        );
        let ragged = "collection,title\nbooks,Dune,extra\n";
        let error = read_import(ragged.as_bytes(), BulkFormat::Csv, 1).expect_err("refused");
        assert!(error.to_string().starts_with("line 2:"), "{error}");
        let jsonl = "{\"collection\":\"books\",\"title\":\"Dune\"}\nnot json\n";
        let error = read_import(jsonl.as_bytes(), BulkFormat::Jsonl, 1).expect_err("refused");
        assert!(
            error.to_string().starts_with("line 2: not a record"),
            "{error}"
        );
        let huge = format!(
            "collection,title\nbooks,{}\n",
            "x".repeat(IMPORT_BATCH_BYTES + 1)
        );
        let error = read_import(huge.as_bytes(), BulkFormat::Csv, 1).expect_err("refused");
        assert!(error.to_string().contains("more than 512 KiB"), "{error}");
    }

    #[tokio::test]
    async fn an_import_goes_in_batches_and_a_refused_batch_says_where_to_go_on() {
        let jsonl: String = (0..2500)
            .map(|n| format!("{{\"collection\":\"books\",\"title\":\"Book {n}\"}}\n"))
            .collect();
        let rows = read_import(jsonl.as_bytes(), BulkFormat::Jsonl, 1001).expect("read");
        assert_eq!(rows.len(), 1500, "from line 1001 on");
        let mut sizes = Vec::new();
        let mut seen = Vec::new();
        let stored = import_rows(
            rows.clone(),
            |batch| {
                sizes.push(batch.len());
                std::future::ready(Ok(()))
            },
            |p| seen.push(p.done),
        )
        .await
        .expect("import");
        assert_eq!(
            (stored, sizes, seen),
            (1500, vec![1000, 500], vec![1000, 1500])
        );
        let mut calls = 0;
        let error = import_rows(
            rows,
            |_| {
                calls += 1;
                std::future::ready(if calls == 2 {
                    Err("refused".into())
                } else {
                    Ok(())
                })
            },
            |_| {},
        )
        .await
        .expect_err("the second batch is refused");
        assert_eq!(
            error.to_string(),
            "the batch from line 2001 was not stored (1000 of 1500 records before it were): refused; fix it and import again from line 2001"
        );
    }
}
