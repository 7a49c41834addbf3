//! Plain-text tables for the CLI: a header row and data rows, columns
//! left-aligned and separated by two spaces, no trailing whitespace. Meant
//! for people; scripts can split on runs of spaces since no cell is empty
//! (empty cells are shown as `-`).

/// A table being built row by row.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are shown as `-`, extra cells are dropped.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        row.resize(self.header.len(), String::new());
        for c in &mut row {
            if c.is_empty() {
                *c = "-".into();
            }
        }
        self.rows.push(row);
    }

    /// Renders the table, every line ending in a newline.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header[i])
                    .chain(self.rows.iter().map(|r| &r[i]))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
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
    fn aligns_columns_to_the_widest_cell() {
        let mut t = Table::new(["range_id", "start_key", "replicas"]);
        t.row(["1", "/Min", "{1,2,3}"]);
        t.row(["12", "user/a-long-key", "{1}"]);
        assert_eq!(
            t.render(),
            "range_id  start_key        replicas\n\
             1         /Min             {1,2,3}\n\
             12        user/a-long-key  {1}\n"
        );
    }

    #[test]
    fn empty_and_missing_cells_show_a_dash_and_lines_have_no_trailing_space() {
        let mut t = Table::new(["id", "address", "sql_address"]);
        t.row(["1", "127.0.0.1:1", ""]);
        t.row(["2"]);
        let s = t.render();
        assert_eq!(
            s,
            "id  address      sql_address\n\
             1   127.0.0.1:1  -\n\
             2   -            -\n"
        );
        assert!(s.lines().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn header_only_when_there_are_no_rows() {
        assert_eq!(Table::new(["a", "bb"]).render(), "a  bb\n");
    }

    #[test]
    fn counts_characters_not_bytes() {
        let mut t = Table::new(["k", "v"]);
        t.row(["é", "x"]);
        assert_eq!(t.render(), "k  v\né  x\n");
    }
}
