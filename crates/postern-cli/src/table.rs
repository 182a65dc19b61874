//! Aligned columns for the command line's tables (`ls`, `history`).

/// The header and the rows as lines: each column as wide as its widest cell (in characters),
/// columns two spaces apart, the last one not padded.
pub(crate) fn aligned(header: &[&str], rows: &[Vec<String>]) -> (String, Vec<String>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for cells in rows {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    (*c).to_owned()
                } else {
                    let pad = widths[i].saturating_sub(c.chars().count());
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let head = line(&mut header.iter().copied());
    let lines = rows
        .iter()
        .map(|cells| line(&mut cells.iter().map(String::as_str)))
        .collect();
    (head, lines)
}

#[cfg(test)]
mod tests {
    use super::aligned;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_and_the_last_is_not_padded() {
        let (head, lines) = aligned(
            &["NAME", "ID", "STATUS"],
            &[
                vec!["web-é".into(), "i-1".into(), "reachable".into()],
                vec!["-".into(), "i-0123".into(), "offline".into()],
            ],
        );
        assert_eq!(head, "NAME   ID      STATUS");
        assert_eq!(lines[0], "web-é  i-1     reachable");
        assert_eq!(lines[1], "-      i-0123  offline");
    }
}
