//! Many records at once: reading an import file (JSON Lines or CSV) into
//! record changes with the line each starts on, storing them in batches,
//! and writing every record out again in either format. The CLI (through
//! the control channel) and the desktop app (in process) share it; each
//! gives the function that stores a batch or fetches a page.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::{Read, Write};
use std::path::Path;

use dan_core::{FieldValue, RecordView};
use dan_store::{RecordQuery, RecordSort};
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

/// Largest import file: it is read whole (and twice: first every row is
/// checked, then they are stored a batch at a time).
pub const MAX_IMPORT_BYTES: u64 = 64 * 1024 * 1024;

/// Most columns a CSV file may have (256 fields a record, each in up to
/// three kinds, and the four columns of the record itself).
pub const MAX_CSV_COLUMNS: usize = 1024;

/// One record change read from an import file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRow {
    /// The line it starts on (1 for the first).
    pub line: u64,
    /// The change.
    pub record: PutRecord,
    /// Its size as JSON (what it adds to a batch).
    pub bytes: usize,
}

/// An import file held in memory (at most [`MAX_IMPORT_BYTES`]), to be
/// read row by row.
#[derive(Clone, Debug)]
pub struct ImportFile {
    bytes: Vec<u8>,
    format: BulkFormat,
    from_line: u64,
}

impl ImportFile {
    /// Reads the file at `path`: a plain file (not a link, a pipe or a
    /// device) of at most [`MAX_IMPORT_BYTES`]. Rows that start before line
    /// `from_line` are left out.
    pub fn open(path: &Path, format: BulkFormat, from_line: u64) -> Result<Self, BulkError> {
        let bytes = dan_store::private::read_bounded(path, MAX_IMPORT_BYTES)
            .map_err(|e| BulkError::Io(e.to_string()))?;
        Ok(ImportFile {
            bytes,
            format,
            from_line,
        })
    }

    /// Reads all of `reader` (standard input, say), refusing more than
    /// [`MAX_IMPORT_BYTES`].
    pub fn read(
        reader: impl std::io::Read,
        format: BulkFormat,
        from_line: u64,
    ) -> Result<Self, BulkError> {
        let mut bytes = Vec::new();
        reader
            .take(MAX_IMPORT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| BulkError::Io(format!("reading the records: {e}")))?;
        if bytes.len() as u64 > MAX_IMPORT_BYTES {
            return Err(BulkError::Io(format!(
                "more than {} MiB of records: split the file",
                MAX_IMPORT_BYTES / 1024 / 1024
            )));
        }
        Ok(ImportFile {
            bytes,
            format,
            from_line,
        })
    }

    /// Its rows, one at a time, in order; a row that is not a record (or is
    /// larger than a batch may be) is an error naming its line.
    pub fn rows(&self) -> Box<dyn Iterator<Item = Result<ImportRow, BulkError>> + Send + '_> {
        let sized = |row: Result<(u64, PutRecord), BulkError>| {
            let (line, record) = row?;
            let bytes = serde_json::to_vec(&record).map_or(usize::MAX, |json| json.len());
            if bytes > IMPORT_BATCH_BYTES {
                return Err(BulkError::Row {
                    line,
                    problem: "a record of more than 512 KiB".into(),
                });
            }
            Ok(ImportRow {
                line,
                record,
                bytes,
            })
        };
        match self.format {
            BulkFormat::Jsonl => Box::new(jsonl_rows(&self.bytes, self.from_line).map(sized)),
            BulkFormat::Csv => Box::new(csv_rows(&self.bytes, self.from_line).map(sized)),
        }
    }

    /// Checks every row, storing nothing: how many there are, or the first
    /// bad one.
    pub fn check(&self) -> Result<u64, BulkError> {
        let mut count = 0;
        for row in self.rows() {
            row?;
            count += 1;
        }
        Ok(count)
    }
}

fn jsonl_rows(
    bytes: &[u8],
    from_line: u64,
) -> impl Iterator<Item = Result<(u64, PutRecord), BulkError>> + Send + '_ {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter_map(move |(n, line)| {
            let line_no = n as u64 + 1;
            if line_no < from_line || line.iter().all(u8::is_ascii_whitespace) {
                return None;
            }
            if line.len() > IMPORT_BATCH_BYTES {
                return Some(Err(BulkError::Row {
                    line: line_no,
                    problem: "a record of more than 512 KiB".into(),
                }));
            }
            Some(
                serde_json::from_slice(line)
                    .map(|record| (line_no, record))
                    .map_err(|e| BulkError::Row {
                        line: line_no,
                        problem: format!("not a record: {e}"),
                    }),
            )
        })
}

fn csv_rows(
    bytes: &[u8],
    from_line: u64,
) -> Box<dyn Iterator<Item = Result<(u64, PutRecord), BulkError>> + Send + '_> {
    let mut csv = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let columns = match csv_columns(&mut csv) {
        Ok(columns) => columns,
        Err(problem) => {
            return Box::new(std::iter::once(Err(BulkError::Row { line: 1, problem })));
        }
    };
    Box::new(csv.into_records().filter_map(move |row| {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                return Some(Err(BulkError::Row {
                    line: e.position().map_or(0, |p| p.line()),
                    problem: format!("not a CSV row: {}", short(&e.to_string())),
                }));
            }
        };
        let line = row.position().map_or(0, |p| p.line());
        if line < from_line || row.iter().all(|cell| cell.trim().is_empty()) {
            return None;
        }
        Some(
            csv_record(&columns, &row)
                .map(|record| (line, record))
                .map_err(|problem| BulkError::Row { line, problem }),
        )
    }))
}

/// The columns a CSV header names: each at most once, and at most
/// [`MAX_CSV_COLUMNS`].
fn csv_columns(csv: &mut csv::Reader<&[u8]>) -> Result<Vec<Column>, String> {
    let header = csv
        .headers()
        .map_err(|e| format!("not a CSV header: {}", short(&e.to_string())))?;
    if header.len() > MAX_CSV_COLUMNS {
        return Err(format!(
            "{} columns; at most {MAX_CSV_COLUMNS}",
            header.len()
        ));
    }
    let columns: Vec<Column> = header.iter().map(Column::of_header).collect();
    for (n, column) in columns.iter().enumerate() {
        if columns[..n].contains(column) {
            return Err(format!(
                "the column `{}` appears twice",
                short(&column.header())
            ));
        }
    }
    Ok(columns)
}

/// `text` cut to 80 characters, for an error message.
fn short(text: &str) -> String {
    if text.chars().count() <= 80 {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(80).collect::<String>())
    }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Text,
    Int,
    Bool,
}

/// The names of the columns that are not fields.
const RECORD_COLUMNS: [&str; 4] = ["id", "collection", "title", "tags"];

impl Column {
    /// The column a header cell names (as [`header`](Self::header) writes
    /// it).
    fn of_header(name: &str) -> Self {
        match unescape_formula(name.trim()) {
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

    /// The header cell: a field's name, with its kind unless it is text
    /// and named unlike the record's own columns (a field a member named
    /// `id` must not take the place of the record's id), and escaped like
    /// any text a member chose ([`escape_formula`]).
    fn header(&self) -> String {
        match self {
            Column::Id => "id".into(),
            Column::Collection => "collection".into(),
            Column::Title => "title".into(),
            Column::Tags => "tags".into(),
            Column::Field(name, Kind::Text) if RECORD_COLUMNS.contains(&name.as_str()) => {
                escape_formula(&format!("{name}:text"))
            }
            Column::Field(name, Kind::Text) => escape_formula(name),
            Column::Field(name, Kind::Int) => escape_formula(&format!("{name}:int")),
            Column::Field(name, Kind::Bool) => escape_formula(&format!("{name}:bool")),
        }
    }
}

fn csv_record(columns: &[Column], row: &csv::StringRecord) -> Result<PutRecord, String> {
    let mut record = PutRecord::default();
    for (column, cell) in columns.iter().zip(row.iter()) {
        if cell.is_empty() {
            continue;
        }
        let text = unescape_formula(cell);
        match column {
            Column::Id => record.id = Some(text.into()),
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

/// Checks every row of `file`, then stores them in batches of at most
/// [`IMPORT_BATCH`] records and [`IMPORT_BATCH_BYTES`] bytes with `store`,
/// telling `progress` after each. A bad row stops it before anything is
/// stored. Returns how many were stored.
pub async fn import_rows<S, F>(
    file: &ImportFile,
    mut store: S,
    mut progress: impl FnMut(BulkProgress),
) -> Result<u64, BulkError>
where
    S: FnMut(Vec<PutRecord>) -> F,
    F: Future<Output = Result<(), String>>,
{
    let total = file.check()?;
    let mut stored = 0;
    let mut rows = file.rows().map_while(Result::ok).peekable();
    while let Some(first) = rows.next() {
        let from_line = first.line;
        let mut bytes = first.bytes;
        let mut batch = vec![first.record];
        while let Some(next) = rows.peek() {
            if batch.len() == IMPORT_BATCH || bytes + next.bytes > IMPORT_BATCH_BYTES {
                break;
            }
            bytes += next.bytes;
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

/// Writes every record that is not deleted (of `collection`, or all) to
/// `out` in `format`; `page` runs a query of the records. The pages go in
/// id order, [`EXPORT_PAGE`] at a time, each after the last id of the one
/// before, so records written meanwhile never make it skip or repeat one,
/// and it stops at the first empty page (a page may come back short when
/// the store skips a damaged row). CSV reads the pages twice: first for
/// the field columns. Returns how many were written.
pub async fn export_records<P, F>(
    format: BulkFormat,
    collection: Option<String>,
    mut page: P,
    out: &mut impl Write,
    total: Option<u64>,
    mut progress: impl FnMut(BulkProgress),
) -> Result<u64, BulkError>
where
    P: FnMut(RecordQuery) -> F,
    F: Future<Output = Result<Vec<RecordView>, String>>,
{
    let mut sink = match format {
        BulkFormat::Jsonl => Sink::Jsonl(out),
        BulkFormat::Csv => {
            // One column per field name and kind: a field that holds
            // whole numbers in one record and text in another gets two, so
            // that every value imports back as what it was.
            let mut fields: BTreeSet<(String, Kind)> = BTreeSet::new();
            each_page(&collection, &mut page, |records| {
                for record in records {
                    for (name, value) in &record.fields {
                        fields.insert((name.clone(), kind_of(value)));
                    }
                }
                if fields.len() + RECORD_COLUMNS.len() > MAX_CSV_COLUMNS {
                    return Err(BulkError::Io(format!(
                        "the records have more than {} different fields, too many for CSV: export them as JSON lines",
                        MAX_CSV_COLUMNS - RECORD_COLUMNS.len()
                    )));
                }
                Ok(())
            })
            .await?;
            let mut columns = vec![Column::Id, Column::Collection, Column::Title, Column::Tags];
            columns.extend(
                fields
                    .into_iter()
                    .map(|(name, kind)| Column::Field(name, kind)),
            );
            let mut writer = csv::Writer::from_writer(out);
            writer
                .write_record(columns.iter().map(Column::header))
                .map_err(written)?;
            Sink::Csv(columns, Box::new(writer))
        }
    };
    let mut done = 0;
    each_page(&collection, &mut page, |records| {
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

/// Calls `each` with every page of the records of `collection` that `page`
/// gives, in id order, until an empty one.
async fn each_page<P, F>(
    collection: &Option<String>,
    page: &mut P,
    mut each: impl FnMut(&[RecordView]) -> Result<(), BulkError>,
) -> Result<(), BulkError>
where
    P: FnMut(RecordQuery) -> F,
    F: Future<Output = Result<Vec<RecordView>, String>>,
{
    let mut after = None;
    loop {
        let query = RecordQuery {
            collection: collection.clone(),
            sort: RecordSort::IdAsc,
            limit: EXPORT_PAGE,
            after_id: after.take(),
            ..Default::default()
        };
        let records = page(query).await.map_err(BulkError::Io)?;
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
        Column::Id => escape_formula(record.id.as_str()),
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
        Column::Field(name, kind) => match record.fields.get(name) {
            Some(value) if kind_of(value) == *kind => match value {
                FieldValue::Text(text) => escape_formula(text),
                FieldValue::Int(n) => n.to_string(),
                FieldValue::Bool(b) => b.to_string(),
            },
            _ => String::new(),
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
        let file = crate::verify::off_the_workers(move || {
            ImportFile::open(&owned, BulkFormat::for_path(&owned), 1)
        })
        .await
        .ok_or_else(|| BulkError::Io("the instance is stopping".into()))??;
        let stored = import_rows(
            &file,
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

    /// Writes every record that is not deleted to a file at `path`, CSV
    /// when its name ends in `.csv` and JSON lines when in `.jsonl`,
    /// telling `progress` after each page. The file is private to this
    /// user and appears only once complete; a name ending otherwise, or a
    /// place inside the data directory, is refused (so nothing can make an
    /// export replace the instance's own files). Returns how many were
    /// written.
    pub async fn export_file(
        &self,
        path: &Path,
        progress: impl FnMut(BulkProgress),
    ) -> Result<u64, crate::NodeError> {
        let named = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| ["csv", "jsonl"].contains(&ext.to_ascii_lowercase().as_str()));
        if !named {
            return Err(crate::NodeError::Invalid(
                "an export is written to a file whose name ends in .csv or .jsonl".into(),
            ));
        }
        let inside = |dir: &Path| {
            let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            canonical(parent.unwrap_or(Path::new("."))).starts_with(canonical(dir))
        };
        if inside(self.data_dir()) {
            return Err(crate::NodeError::Invalid(
                "an export is not written into the instance's data folder: choose another place"
                    .into(),
            ));
        }
        let total = self.count_records(&RecordQuery::default()).await?;
        let mut out = Vec::new();
        let written = export_records(
            BulkFormat::for_path(path),
            None,
            |query| async move { self.list_records(&query).await.map_err(|e| e.to_string()) },
            &mut out,
            Some(total),
            progress,
        )
        .await?;
        let owned = path.to_owned();
        crate::verify::off_the_workers(move || dan_store::private::write_replacing(&owned, &out))
            .await
            .ok_or_else(|| BulkError::Io("the instance is stopping".into()))??;
        Ok(written)
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

    /// Pages of `records` in id order, `size` at a time (fewer than asked
    /// for, as when the store skips a damaged row).
    fn pages(
        records: Vec<RecordView>,
        size: usize,
    ) -> impl FnMut(RecordQuery) -> std::future::Ready<Result<Vec<RecordView>, String>> {
        move |query| {
            let page = records
                .iter()
                .filter(|r| query.after_id.as_deref().is_none_or(|a| r.id.as_str() > a))
                .take(size)
                .cloned()
                .collect();
            std::future::ready(Ok(page))
        }
    }

    fn read_import(
        text: impl AsRef<[u8]>,
        format: BulkFormat,
        from_line: u64,
    ) -> Result<Vec<ImportRow>, BulkError> {
        ImportFile::read(text.as_ref(), format, from_line)?
            .rows()
            .collect()
    }

    async fn export(format: BulkFormat, records: Vec<RecordView>) -> String {
        let mut out = Vec::new();
        let written = export_records(
            format,
            None,
            pages(records.clone(), 2),
            &mut out,
            None,
            |_| {},
        )
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
            csv.starts_with("id,collection,title,tags,note,pages:int,read,read:bool\n"),
            "`read` holds both kinds: a column for each:\n{csv}"
        );
        let rows = read_import(csv, BulkFormat::Csv, 1).expect("import");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[2].line, 5, "the row after a field over two lines");
        assert_eq!(rows[0].record.fields["pages"], Some(FieldValue::Int(412)));
        assert_eq!(rows[0].record.fields["read"], Some(FieldValue::Bool(true)));
        assert_eq!(
            rows[2].record.fields["read"],
            Some(FieldValue::Text("maybe".into()))
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
        let rows = read_import(csv, BulkFormat::Csv, 1).expect("import");
        assert_eq!(rows[0].record.title.as_deref(), Some(record.title.as_str()));
        assert_eq!(
            rows[0].record.fields["note"],
            Some(FieldValue::Text("-1 day".into()))
        );
        let plain = "collection,title\nbooks,'quoted on purpose\n";
        let rows = read_import(plain, BulkFormat::Csv, 1).expect("import");
        assert_eq!(rows[0].record.title.as_deref(), Some("'quoted on purpose"));
    }

    #[tokio::test]
    async fn records_exported_as_json_lines_import_again() {
        let records = vec![
            view("a", &[("pages", FieldValue::Int(1))], &["t"]),
            view("b", &[], &[]),
        ];
        let jsonl = export(BulkFormat::Jsonl, records).await;
        let rows = read_import(jsonl, BulkFormat::Jsonl, 1).expect("import");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 2);
        assert_eq!(rows[0].record.id.as_deref(), Some("a"));
        assert_eq!(rows[0].record.fields["pages"], Some(FieldValue::Int(1)));
    }

    #[test]
    fn bad_input_a_bad_row_is_reported_with_its_line_and_nothing_is_read() {
        let csv = "collection,title,pages:int\nbooks,Dune,412\nbooks,Emma,many\n";
        let error = read_import(csv, BulkFormat::Csv, 1).expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("line 3: `pages` holds whole numbers, and `many` is not one"),
            "{error}"
        );
        let ragged = "collection,title\nbooks,Dune,extra\n";
        let error = read_import(ragged, BulkFormat::Csv, 1).expect_err("refused");
        assert!(error.to_string().starts_with("line 2:"), "{error}");
        let jsonl = "{\"collection\":\"books\",\"title\":\"Dune\"}\nnot json\n";
        let error = read_import(jsonl, BulkFormat::Jsonl, 1).expect_err("refused");
        assert!(
            error.to_string().starts_with("line 2: not a record"),
            "{error}"
        );
        let huge = format!(
            "collection,title\nbooks,{}\n",
            "x".repeat(IMPORT_BATCH_BYTES + 1)
        );
        let error = read_import(huge, BulkFormat::Csv, 1).expect_err("refused");
        assert!(error.to_string().contains("more than 512 KiB"), "{error}");
    }

    #[tokio::test]
    async fn an_import_goes_in_batches_and_a_refused_batch_says_where_to_go_on() {
        let jsonl: String = (0..2500)
            .map(|n| format!("{{\"collection\":\"books\",\"title\":\"Book {n}\"}}\n"))
            .collect();
        let file = ImportFile::read(jsonl.as_bytes(), BulkFormat::Jsonl, 1001).expect("read");
        assert_eq!(file.check().expect("rows"), 1500, "from line 1001 on");
        let mut sizes = Vec::new();
        let mut seen = Vec::new();
        let stored = import_rows(
            &file,
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
            &file,
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

    // Attacker review: a field a member named `id` (or `title`) took the
    // place of the record's own column on import, so importing an export
    // changed another record; one record holding text in a field of whole
    // numbers turned every record's number into text.
    #[tokio::test]
    async fn bad_input_fields_named_like_the_records_columns_or_of_two_kinds_import_back_as_they_were()
     {
        let sly = view(
            "a",
            &[
                ("id", FieldValue::Text("victim".into())),
                ("title", FieldValue::Text("spam".into())),
                ("pages", FieldValue::Int(3)),
                ("+cmd", FieldValue::Text("x".into())),
            ],
            &[],
        );
        let other = view("b", &[("pages", FieldValue::Text("many".into()))], &[]);
        let csv = export(BulkFormat::Csv, vec![sly.clone(), other]).await;
        assert!(
            csv.starts_with("id,collection,title,tags,'+cmd,id:text,pages,pages:int,title:text\n"),
            "{csv}"
        );
        let rows = read_import(&csv, BulkFormat::Csv, 1).expect("import");
        assert_eq!(rows[0].record.id.as_deref(), Some("a"));
        assert_eq!(rows[0].record.title.as_deref(), Some(sly.title.as_str()));
        assert_eq!(
            rows[0].record.fields["id"],
            Some(FieldValue::Text("victim".into()))
        );
        assert_eq!(
            rows[0].record.fields["+cmd"],
            Some(FieldValue::Text("x".into()))
        );
        assert_eq!(rows[0].record.fields["pages"], Some(FieldValue::Int(3)));
        assert_eq!(
            rows[1].record.fields["pages"],
            Some(FieldValue::Text("many".into()))
        );
        assert_eq!(rows[1].record.fields.len(), 1);
    }

    #[test]
    fn bad_input_a_header_naming_a_column_twice_or_too_many_columns_is_refused() {
        let error = read_import("id,title,id\n", BulkFormat::Csv, 1).expect_err("twice");
        assert!(error.to_string().contains("`id` appears twice"), "{error}");
        let wide: Vec<String> = (0..=MAX_CSV_COLUMNS).map(|n| format!("f{n}")).collect();
        let error =
            read_import(format!("{}\n", wide.join(",")), BulkFormat::Csv, 1).expect_err("too wide");
        assert!(error.to_string().contains("at most 1024"), "{error}");
    }

    #[test]
    fn bad_input_an_import_file_that_is_a_link_or_too_large_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let target = dir.path().join("real.csv");
        std::fs::write(&target, "collection,title\nbooks,Dune\n").expect("write");
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&target, &link).expect("link");
        assert!(
            ImportFile::open(&link, BulkFormat::Csv, 1).is_err(),
            "a link"
        );
        assert!(ImportFile::open(&target, BulkFormat::Csv, 1).is_ok());
        let endless = std::io::repeat(b'x').take(MAX_IMPORT_BYTES + 1);
        let error = ImportFile::read(endless, BulkFormat::Jsonl, 1).expect_err("too large");
        assert!(error.to_string().contains("split the file"), "{error}");
    }
}
