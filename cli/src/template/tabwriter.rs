//! Go's `text/tabwriter` as docker sets it up for tables:
//! `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
//!
//! A tab ends a cell; the text after a line's last tab is not a cell and is
//! never padded. A column is a run of adjacent lines that all have a cell
//! at that index; it is as wide as its widest cell plus 3 spaces, and at
//! least 10. Widths count characters, as Go counts runes.
//! [`align_tabs_with`] takes other widths (`docker version` uses 20 and 1).

const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// Aligns the tab-separated cells of `text` into columns (docker's table
/// layout). Newlines are kept as they are, a final one included.
pub fn align_tabs(text: &str) -> String {
    align_tabs_with(text, MIN_WIDTH, PADDING)
}

/// [`align_tabs`] with Go's `minwidth` and `padding` of the writer.
pub fn align_tabs_with(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text
        .split('\n')
        .map(|line| line.split('\t').collect())
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut widths = Vec::new();
    let layout = Layout { min_width, padding };
    layout.format(&lines, &mut widths, 0, lines.len(), &mut out);
    out
}

struct Layout {
    min_width: usize,
    padding: usize,
}

/// Cells a line ends with a tab: all but its last.
fn cells(line: &[&str]) -> usize {
    line.len() - 1
}

impl Layout {
    /// Go's `Writer.format`: lines `line0..line1` with the widths of the
    /// columns left of `widths.len()` known; finds the blocks of the next
    /// column and recurses into each.
    fn format(
        &self,
        lines: &[Vec<&str>],
        widths: &mut Vec<usize>,
        mut line0: usize,
        line1: usize,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if cells(&lines[this]) <= column {
                this += 1;
                continue;
            }
            write_lines(lines, widths, line0, this, out);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && cells(&lines[this]) > column {
                width = width.max(lines[this][column].chars().count() + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(lines, widths, line0, this, out);
            widths.pop();
            line0 = this;
        }
        write_lines(lines, widths, line0, line1, out);
    }
}

fn write_lines(
    lines: &[Vec<&str>],
    widths: &[usize],
    line0: usize,
    line1: usize,
    out: &mut String,
) {
    for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(width) = widths.get(j) {
                let pad = width.saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_widest_cell_plus_three_at_least_ten() {
        assert_eq!(
            align_tabs("CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox:latest\tweb\n"),
            "CONTAINER ID   IMAGE            NAMES\nabc            busybox:latest   web\n"
        );
        assert_eq!(align_tabs("a\tb\n"), "a         b\n");
    }

    #[test]
    fn the_text_after_the_last_tab_is_not_padded() {
        assert_eq!(
            align_tabs("a\tb\t\nc\td\t"),
            "a         b         \nc         d         "
        );
        assert_eq!(align_tabs("no tabs here\nx"), "no tabs here\nx");
        assert_eq!(align_tabs(""), "");
    }

    #[test]
    fn a_line_with_fewer_cells_ends_the_column_block() {
        // The middle line has no cell in column 0, so the lines around it
        // are aligned each on its own.
        assert_eq!(
            align_tabs("long-cell-here\tx\nplain\nab\ty"),
            "long-cell-here   x\nplain\nab        y"
        );
        // Column 1 spans only the lines that have it.
        assert_eq!(
            align_tabs("a\tbbbbbbbbbbbbbb\tc\nd\te\nf\tg\th"),
            "a         bbbbbbbbbbbbbb   c\nd         e\nf         g         h"
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        assert_eq!(align_tabs("héllo\tx\nab\ty"), "héllo     x\nab        y");
    }
}
