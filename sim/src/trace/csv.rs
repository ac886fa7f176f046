//! CSV traces: a header row, then one request per line. The id and size columns are required,
//! a time column is optional (checked for presence, not used: replay follows file order).

use super::{Request, Trace, TraceError, text_id};
use reef_core::units::parse_size;
use std::io::BufRead;
use std::path::Path;

/// Which header names hold what.
#[derive(Clone, Debug, clap::Args)]
pub struct CsvColumns {
    /// CSV: the column with object ids (integers, or names that are hashed).
    #[arg(long = "id-column", default_value = "obj_id")]
    pub id: String,
    /// CSV: the column with object sizes (bytes, or human units such as 10MB).
    #[arg(long = "size-column", default_value = "obj_size")]
    pub size: String,
    /// CSV: the time column, if the trace must have one.
    #[arg(long = "time-column")]
    pub time: Option<String>,
}

impl Default for CsvColumns {
    fn default() -> Self {
        CsvColumns { id: "obj_id".into(), size: "obj_size".into(), time: None }
    }
}

fn fields(line: &str) -> impl Iterator<Item = &str> {
    line.split(',').map(|f| f.trim().trim_matches('"'))
}

pub(super) fn read(path: &Path, reader: Box<dyn BufRead>, columns: &CsvColumns) -> Result<Trace, TraceError> {
    let read_err = |source| TraceError::Read { path: path.into(), source };
    let mut lines = reader.lines();
    let header = lines.next().ok_or_else(|| TraceError::NoHeader { path: path.into() })?.map_err(read_err)?;
    let names: Vec<&str> = fields(&header).collect();
    let find = |column: &str, flag: &'static str| {
        names.iter().position(|n| *n == column).ok_or_else(|| TraceError::MissingColumn {
            path: path.into(),
            column: column.to_string(),
            found: names.join(", "),
            flag,
        })
    };
    let id_col = find(&columns.id, "--id-column")?;
    let size_col = find(&columns.size, "--size-column")?;
    if let Some(time) = &columns.time {
        find(time, "--time-column")?;
    }
    let mut requests = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line.map_err(read_err)?;
        if line.trim().is_empty() {
            continue;
        }
        let line_no = n as u64 + 2;
        let bad = |what: String| TraceError::BadLine { path: path.into(), line: line_no, what };
        let (mut id, mut size, mut count) = (None, None, 0);
        for (i, f) in fields(&line).enumerate() {
            if i == id_col {
                id = Some(f);
            }
            if i == size_col {
                size = Some(f);
            }
            count += 1;
        }
        let (Some(id), Some(size)) = (id, size) else {
            return Err(bad(format!("{count} fields, but the header has {}", names.len())));
        };
        let size = parse_size(size).map_err(|e| bad(format!("column `{}`: {e}", columns.size)))?;
        requests.push(Request { id: text_id(id), size });
    }
    Ok(Trace { requests, next: None })
}
