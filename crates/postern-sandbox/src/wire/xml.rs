//! A small XML writer for the query protocols' answers: elements and escaped text, nothing else.

use std::fmt::Write as _;

/// Builds one XML document, element by element.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    /// A document starting with the XML declaration.
    pub fn document() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    /// `<name xmlns="namespace">`.
    pub fn open_ns(&mut self, name: &str, namespace: &str) {
        let _ = write!(self.out, "<{name} xmlns=\"{}\">", escape(namespace));
    }

    /// `<name>`.
    pub fn open(&mut self, name: &str) {
        let _ = write!(self.out, "<{name}>");
    }

    /// `</name>`.
    pub fn close(&mut self, name: &str) {
        let _ = write!(self.out, "</{name}>");
    }

    /// `<name>text</name>`, with the text escaped.
    pub fn leaf(&mut self, name: &str, text: &str) {
        let _ = write!(self.out, "<{name}>{}</{name}>", escape(text));
    }

    /// `<name>text</name>` when there is a text, nothing otherwise.
    pub fn leaf_opt(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.leaf(name, text);
        }
    }

    /// The finished document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Escape text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are dropped rather than producing a
            // document no client can parse.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text() {
        let mut x = Writer::default();
        x.open("A");
        x.leaf("B", "1 < 2 & \"q\" \u{1}");
        x.close("A");
        assert_eq!(x.finish(), "<A><B>1 &lt; 2 &amp; &quot;q&quot; </B></A>");
    }
}
