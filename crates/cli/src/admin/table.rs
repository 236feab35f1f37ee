//! Aligned text tables: a header row, then one row per item, columns
//! separated by two spaces, numbers right-aligned; each cell one line, its
//! control characters escaped.

use super::printable;

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Numbers: padded on the left.
    Right,
}

/// A table being filled.
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column titles.
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are blank, extra ones dropped), its cells
    /// made printable (control characters escaped: see `printable.rs`).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|c| printable::line(c)).collect());
    }

    /// The table as text, a line per row, without trailing spaces.
    pub fn render(&self) -> String {
        let cell = |row: &[String], i: usize| row.get(i).map_or("", |c| c.as_str()).to_owned();
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .map(|(t, _)| t.chars().count())
            .collect();
        for row in &self.rows {
            for (i, w) in widths.iter_mut().enumerate() {
                *w = (*w).max(cell(row, i).chars().count());
            }
        }
        let titles: Vec<String> = self.columns.iter().map(|(t, _)| (*t).to_owned()).collect();
        let mut out = String::new();
        for row in std::iter::once(&titles).chain(&self.rows) {
            let mut line = String::new();
            for (i, (_, align)) in self.columns.iter().enumerate() {
                let text = cell(row, i);
                let pad = " ".repeat(widths[i] - text.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                match align {
                    Align::Left => {
                        line.push_str(&text);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(&text);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_numbers_are_right_aligned() {
        let mut t = Table::new(&[
            ("NAME", Align::Left),
            ("READY", Align::Right),
            ("X", Align::Left),
        ]);
        t.row(vec!["orders".into(), "12".into(), "yes".into()]);
        t.row(vec!["é".into(), "3".into()]);
        assert_eq!(
            t.render(),
            "NAME    READY  X\n\
             orders     12  yes\n\
             é           3\n"
        );
    }

    #[test]
    fn a_cell_cannot_break_its_row_or_reach_the_terminal() {
        let mut t = Table::new(&[("NAME", Align::Left), ("READY", Align::Right)]);
        t.row(vec!["a\nfake  99".into(), "1".into()]);
        t.row(vec!["\u{1b}[2Jb".into(), "2".into()]);
        assert_eq!(
            t.render(),
            "NAME         READY\n\
             a\\nfake  99      1\n\
             \\x1b[2Jb         2\n"
        );
    }
}
