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
    /// Markdown with every column padded to its widest cell: read in a terminal, as
    /// llama-bench prints its results.
    Aligned,
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
    if format == TableFormat::Aligned {
        return write_aligned(header, rows, out);
    }
    match format {
        TableFormat::Csv => writeln!(out, "{}", header.join(","))?,
        TableFormat::Markdown | TableFormat::Aligned => {
            writeln!(out, "| {} |", header.join(" | "))?;
            writeln!(out, "|{}", "---|".repeat(header.len()))?;
        }
    }
    for row in rows {
        let cells = row.into_iter().map(|c| match format {
            TableFormat::Csv => csv_field(c.as_ref()),
            TableFormat::Markdown | TableFormat::Aligned => markdown_cell(c.as_ref()),
        });
        match format {
            TableFormat::Csv => writeln!(out, "{}", cells.collect::<Vec<_>>().join(","))?,
            TableFormat::Markdown | TableFormat::Aligned => {
                writeln!(out, "| {} |", cells.collect::<Vec<_>>().join(" | "))?;
            }
        }
    }
    out.flush()
}

/// [`TableFormat::Aligned`]: widths counted in characters, so `±` and `÷` line up.
fn write_aligned<R, S>(header: &[&str], rows: R, out: &mut dyn Write) -> std::io::Result<()>
where
    R: IntoIterator,
    R::Item: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(|c| markdown_cell(c.as_ref())).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, &w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    writeln!(out, "{}", line(&mut header.iter().copied()))?;
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w + 2)).collect();
    writeln!(out, "|{}|", rule.join("|"))?;
    for row in &rows {
        writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
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

    #[test]
    fn aligned_pads_every_column_to_its_widest_cell() {
        let mut out = Vec::new();
        write_table(
            TableFormat::Aligned,
            &["model", "t/s"],
            [vec!["a", "42.2 ±1.2"], vec!["longer name", "7"]],
            &mut out,
        )
        .expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "| model       | t/s       |\n|-------------|-----------|\n| a           | 42.2 ±1.2 |\n| longer name | 7         |\n"
        );
    }
}
