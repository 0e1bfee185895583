//! One tabular printer for every table edgebench writes as text (the export's CSV and Markdown,
//! the report's `report.csv` and `summary.md`), in the spirit of llama-bench's printers: the
//! rows are built once, the format only decides how a cell is quoted.

use std::io::Write;

/// How a table is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
    Csv,
    /// A GitHub Markdown table: pipes escaped, line breaks folded into spaces.
    Markdown,
}

/// One CSV field (RFC 4180).
#[must_use]
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// One Markdown table cell.
#[must_use]
pub fn markdown_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Writes `header` and `rows` as a table in `format`.
pub fn write_table<R, S>(
    format: TableFormat,
    header: &[&str],
    rows: R,
    out: &mut dyn Write,
) -> std::io::Result<()>
where
    R: IntoIterator,
    R::Item: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    match format {
        TableFormat::Csv => writeln!(out, "{}", header.join(","))?,
        TableFormat::Markdown => {
            writeln!(out, "| {} |", header.join(" | "))?;
            writeln!(out, "|{}", "---|".repeat(header.len()))?;
        }
    }
    for row in rows {
        let cells = row.into_iter().map(|c| match format {
            TableFormat::Csv => csv_field(c.as_ref()),
            TableFormat::Markdown => markdown_cell(c.as_ref()),
        });
        match format {
            TableFormat::Csv => writeln!(out, "{}", cells.collect::<Vec<_>>().join(","))?,
            TableFormat::Markdown => {
                writeln!(out, "| {} |", cells.collect::<Vec<_>>().join(" | "))?;
            }
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_must_be_quoted_and_markdown_escapes_pipes() {
        let mut csv = Vec::new();
        write_table(
            TableFormat::Csv,
            &["a", "b"],
            [
                vec!["plain", "with, comma"],
                vec!["say \"hi\"", "two\nlines"],
            ],
            &mut csv,
        )
        .expect("write");
        assert_eq!(
            String::from_utf8(csv).expect("utf8"),
            "a,b\nplain,\"with, comma\"\n\"say \"\"hi\"\"\",\"two\nlines\"\n"
        );
        let mut md = Vec::new();
        write_table(
            TableFormat::Markdown,
            &["a", "b"],
            [vec!["x|y", "two\nlines"]],
            &mut md,
        )
        .expect("write");
        assert_eq!(
            String::from_utf8(md).expect("utf8"),
            "| a | b |\n|---|---|\n| x\\|y | two lines |\n"
        );
    }
}
