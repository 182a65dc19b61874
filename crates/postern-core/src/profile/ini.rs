//! Stage one: an AWS config or credentials file as written, read the way the AWS CLI reads it.
//!
//! The AWS CLI (botocore) reads these files with Python's `configparser.RawConfigParser` in its
//! strict mode. This reader follows the same rules, so that a file means the same thing to
//! Postern as to the CLI:
//!
//! - `#` and `;` start a comment only at the start of a line (after blanks); an inline `# …` is
//!   part of the value;
//! - `key = value` and `key: value` both work; keys are lower-cased, keys and values trimmed;
//! - a line indented deeper than its key's line continues the value (blank lines in between
//!   are kept), which is how `s3 =` sub-sections are written; such a value becomes a nested map
//!   of `k = v` lines;
//! - `[DEFAULT]` gives its keys to every other section;
//! - a section header is whatever stands between the first `[` and the last `]` of its line;
//! - quotes are kept as part of the value.
//!
//! Where the CLI refuses the whole file (a duplicate section or key, a key outside any section,
//! a line that is not `key = value`, a byte-order mark, bytes that are not UTF-8), Postern reports
//! an error naming the file, the line and the fix, and keeps reading: the rest of the file stays
//! usable. Later duplicates then win, as in a non-strict parser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Problem, ProblemKind, Severity};

/// A value: a string, or a nested block of `key = value` lines (`s3 =` followed by indented
/// lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A plain value.
    Text(String),
    /// A nested block.
    Nested(BTreeMap<String, String>),
}

impl Value {
    /// The text, if this is a plain value.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            Value::Nested(_) => None,
        }
    }
}

/// One `key = value` of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// The line the key is on (1-based).
    pub line: usize,
}

/// A section: its header as written and its entries.
#[derive(Clone, PartialEq, Eq)]
pub struct Section {
    /// What stands between the brackets (`profile dev`, `default`, `sso-session corp`).
    pub header: String,
    /// The line of the header.
    pub line: usize,
    /// The entries by lower-cased key, `[DEFAULT]`'s included.
    pub entries: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and lines only: values may be secrets.
        let keys: Vec<(&str, usize)> = self
            .entries
            .iter()
            .map(|(k, e)| (k.as_str(), e.line))
            .collect();
        f.debug_struct("Section")
            .field("header", &self.header)
            .field("line", &self.line)
            .field("keys", &keys)
            .finish()
    }
}

/// A whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IniFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its sections in the order they first appear (`[DEFAULT]` excluded).
    pub sections: Vec<Section>,
    /// What is wrong with it.
    pub problems: Vec<Problem>,
}

impl IniFile {
    /// Whether the AWS CLI would refuse this file.
    pub fn refused_by_aws_cli(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

/// Where the reader is inside a multi-line value.
struct Open {
    section: usize,
    key: String,
    line: usize,
    lines: Vec<String>,
}

/// Read `bytes`, the contents of `path`.
pub fn parse(path: &Path, bytes: &[u8]) -> IniFile {
    let mut file = IniFile {
        path: path.to_owned(),
        ..IniFile::default()
    };
    let problem = |line: usize, kind: ProblemKind| Problem::new(path, line, kind);
    let (text, bom) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    if bom {
        file.problems.push(problem(1, ProblemKind::ByteOrderMark));
    }
    let text = match std::str::from_utf8(text) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(error) => {
            let line = 1 + text[..error.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            file.problems.push(problem(line, ProblemKind::NotUtf8));
            String::from_utf8_lossy(text)
        }
    };

    let mut defaults: BTreeMap<String, Entry> = BTreeMap::new();
    // Sections by header; `None` is [DEFAULT].
    let mut current: Option<Option<usize>> = None;
    let mut seen_sections: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_keys: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut open: Option<Open> = None;
    let mut indent_level = 0usize;

    for (index, raw) in lines(&text).enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        let comment = trimmed.starts_with('#') || trimmed.starts_with(';');
        if trimmed.is_empty() || comment {
            // Blank lines belong to an open value (comment lines do not); a blank does not end
            // the value, as in configparser's default mode.
            if !comment && let Some(open) = open.as_mut() {
                open.lines.push(String::new());
            }
            continue;
        }
        let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
        if let Some(value) = open.as_mut().filter(|_| indent > indent_level) {
            value.lines.push(trimmed.to_owned());
            continue;
        }
        indent_level = indent;
        close_value(&mut open, &mut file, &mut defaults, path);
        let mut header = section_header(trimmed);
        if let Some(unclosed) = unclosed_header(trimmed) {
            // configparser reads it as a key where it can (in a section, with a `=` or `:`);
            // anywhere else it refuses the file. Then it is taken as the header it was meant to
            // be, so that the keys under it do not land in the section above.
            let refused = current.is_none() || split_option(trimmed).is_none();
            file.problems.push(problem(
                number,
                ProblemKind::UnclosedHeader {
                    header: unclosed.to_owned(),
                    refused,
                },
            ));
            if refused {
                header = Some(unclosed);
            }
        }
        if let Some(header) = header {
            let header = header.to_owned();
            if header == "DEFAULT" {
                current = Some(None);
            } else if let Some(&existing) = seen_sections.get(&header) {
                let first = file.sections[existing].line;
                file.problems.push(problem(
                    number,
                    ProblemKind::DuplicateSection {
                        header: header.clone(),
                        first_line: first,
                    },
                ));
                current = Some(Some(existing));
            } else {
                seen_sections.insert(header.clone(), file.sections.len());
                current = Some(Some(file.sections.len()));
                file.sections.push(Section {
                    header,
                    line: number,
                    entries: BTreeMap::new(),
                });
            }
            continue;
        }
        let Some(section) = current else {
            file.problems
                .push(problem(number, ProblemKind::KeyOutsideSection));
            continue;
        };
        let Some((key, value)) = split_option(trimmed) else {
            file.problems
                .push(problem(number, ProblemKind::NotKeyValue));
            continue;
        };
        let key = key.to_lowercase();
        if key.is_empty() {
            file.problems.push(problem(number, ProblemKind::EmptyKey));
        }
        let section_name = match section {
            Some(i) => file.sections[i].header.clone(),
            None => "DEFAULT".to_owned(),
        };
        if let Some(first_line) = seen_keys.insert((section_name.clone(), key.clone()), number) {
            file.problems.push(problem(
                number,
                ProblemKind::DuplicateKey {
                    section: section_name,
                    key: key.clone(),
                    first_line,
                },
            ));
        }
        open = Some(Open {
            section: section.map_or(usize::MAX, |i| i),
            key,
            line: number,
            lines: vec![value.to_owned()],
        });
    }
    close_value(&mut open, &mut file, &mut defaults, path);

    // [DEFAULT]'s keys reach every section that does not set them itself.
    if !defaults.is_empty() {
        for section in &mut file.sections {
            for (key, entry) in &defaults {
                section
                    .entries
                    .entry(key.clone())
                    .or_insert_with(|| entry.clone());
            }
        }
    }
    file
}

/// Store the value being read, joined as configparser joins it, nested blocks parsed.
fn close_value(
    open: &mut Option<Open>,
    file: &mut IniFile,
    defaults: &mut BTreeMap<String, Entry>,
    path: &Path,
) {
    let Some(Open {
        section,
        key,
        line,
        lines,
    }) = open.take()
    else {
        return;
    };
    let joined = lines.join("\n");
    let joined = joined.trim_end();
    let value = if joined.starts_with('\n') {
        let mut nested = BTreeMap::new();
        for (offset, inner) in joined.lines().enumerate() {
            let inner = inner.trim();
            if inner.is_empty() {
                continue;
            }
            match inner.split_once('=') {
                Some((k, v)) => {
                    nested.insert(k.trim().to_owned(), v.trim().to_owned());
                }
                None => file.problems.push(Problem::new(
                    path,
                    line + offset,
                    ProblemKind::NestedNotKeyValue { key: key.clone() },
                )),
            }
        }
        Value::Nested(nested)
    } else {
        Value::Text(joined.to_owned())
    };
    let entry = Entry { value, line };
    if section == usize::MAX {
        defaults.insert(key, entry);
    } else if let Some(section) = file.sections.get_mut(section) {
        section.entries.insert(key, entry);
    }
}

/// Lines as Python's universal newlines cut them: `\n`, `\r\n` and a lone `\r` all end a line.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = match rest.as_bytes().get(end) {
            Some(b'\r') if rest.as_bytes().get(end + 1) == Some(&b'\n') => 2,
            Some(_) => 1,
            None => 0,
        };
        rest = &rest[end + skip..];
        Some(line)
    })
}

/// `[header]`: what stands between the first `[` and the last `]` (configparser's permissive
/// `\[(?P<header>.+)\]` matched at the start of the trimmed line; text after the `]` is ignored).
fn section_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    (close > 0).then(|| &inner[..close])
}

/// `[header` without its `]`: the header it was meant to be (`None` for anything else, and for a
/// lone `[`).
fn unclosed_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?.trim_end();
    (!line.contains(']') && !inner.trim().is_empty()).then_some(inner)
}

/// `key = value` or `key: value`, split at the first `=` or `:`.
fn split_option(line: &str) -> Option<(&str, &str)> {
    let at = line.find(['=', ':'])?;
    Some((line[..at].trim(), line[at + 1..].trim()))
}

/// Split a section header into words as Python's `shlex.split` does (POSIX rules: blanks
/// separate, quotes group, a backslash escapes). `None` where shlex raises (an open quote, a
/// trailing backslash).
pub fn shell_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                word.push(chars.next()?);
                in_word = true;
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\') => word.push(c),
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> IniFile {
        parse(Path::new("config"), text.as_bytes())
    }

    fn text<'a>(file: &'a IniFile, section: &str, key: &str) -> Option<&'a str> {
        file.sections
            .iter()
            .find(|s| s.header == section)?
            .entries
            .get(key)?
            .value
            .text()
    }

    #[test]
    fn values_continuations_and_nested_blocks() {
        let file = read(
            "[profile a]\nRegion: eu-west-1 # not a comment\n; a comment\ns3 =\n  max_concurrent_requests = 10\n\n  addressing_style=path\nnote = one\n   two\n",
        );
        assert!(file.problems.is_empty(), "{:?}", file.problems);
        assert_eq!(
            text(&file, "profile a", "region"),
            Some("eu-west-1 # not a comment")
        );
        assert_eq!(text(&file, "profile a", "note"), Some("one\ntwo"));
        let s3 = &file.sections[0].entries["s3"].value;
        assert_eq!(
            s3,
            &Value::Nested(BTreeMap::from([
                ("max_concurrent_requests".into(), "10".into()),
                ("addressing_style".into(), "path".into()),
            ]))
        );
    }

    #[test]
    fn crlf_lone_cr_and_default_section() {
        let file = read("[DEFAULT]\r\nregion = us-east-2\r\n[a]\routput = json\r[b]\nregion=x\n");
        assert!(file.problems.is_empty(), "{:?}", file.problems);
        assert_eq!(text(&file, "a", "region"), Some("us-east-2"));
        assert_eq!(text(&file, "a", "output"), Some("json"));
        assert_eq!(text(&file, "b", "region"), Some("x"));
        assert_eq!(file.sections.len(), 2);
    }

    #[test]
    fn what_the_aws_cli_refuses_is_reported_with_its_line_and_the_rest_is_kept() {
        let file = read(
            "orphan = 1\n[a]\nx = 1\nx = 2\nno delimiter here\n= empty key\n[a]\ny = 3\n[b]\ns3 =\n  broken\nz = 4\n",
        );
        let kinds: Vec<_> = file.problems.iter().map(|p| (p.line, &p.kind)).collect();
        assert!(matches!(kinds[0], (1, ProblemKind::KeyOutsideSection)));
        assert!(matches!(
            kinds[1],
            (4, ProblemKind::DuplicateKey { first_line: 3, .. })
        ));
        assert!(matches!(kinds[2], (5, ProblemKind::NotKeyValue)));
        assert!(matches!(kinds[3], (6, ProblemKind::EmptyKey)));
        assert!(matches!(
            kinds[4],
            (7, ProblemKind::DuplicateSection { first_line: 2, .. })
        ));
        assert!(matches!(
            kinds[5],
            (11, ProblemKind::NestedNotKeyValue { .. })
        ));
        assert!(file.refused_by_aws_cli());
        assert_eq!(text(&file, "a", "x"), Some("2"));
        assert_eq!(text(&file, "a", "y"), Some("3"));
        assert_eq!(text(&file, "b", "z"), Some("4"));
    }

    #[test]
    fn an_unclosed_header_is_reported_as_such_and_read_as_meant() {
        let file = read(
            "[profile a]\nregion = eu-west-1\n[profile b\nrole_arn = arn:aws:iam::111111111111:role/b\nsource_profile = a\n",
        );
        assert_eq!(file.problems.len(), 1, "{:?}", file.problems);
        let problem = &file.problems[0];
        assert_eq!(problem.line, 3);
        assert_eq!(
            problem.kind,
            ProblemKind::UnclosedHeader {
                header: "profile b".into(),
                refused: true
            }
        );
        assert_eq!(problem.severity, Severity::Error);
        assert!(file.refused_by_aws_cli());
        assert_eq!(
            problem.to_string(),
            "config:3: [profile b has no closing `]` (the AWS CLI refuses this file): write [profile b]"
        );
        // The keys under it are b's, not a's.
        assert_eq!(text(&file, "profile a", "role_arn"), None);
        assert_eq!(text(&file, "profile b", "source_profile"), Some("a"));

        // First in the file: the same.
        let file = read("[default\nregion = x\n");
        assert!(matches!(
            &file.problems[..],
            [Problem {
                line: 1,
                kind: ProblemKind::UnclosedHeader { refused: true, .. },
                ..
            }]
        ));
        assert_eq!(text(&file, "default", "region"), Some("x"));

        // With a `=` inside a section the AWS CLI reads a key (and keeps the file): so does
        // Postern, with a warning.
        let file = read("[a]\n[profile b = c\n");
        assert!(!file.refused_by_aws_cli(), "{:?}", file.problems);
        assert_eq!(file.problems[0].severity, Severity::Warning);
        assert_eq!(text(&file, "a", "[profile b"), Some("c"));
        assert_eq!(file.sections.len(), 1);
    }

    #[test]
    fn byte_order_mark_and_bad_bytes() {
        let file = parse(Path::new("c"), b"\xEF\xBB\xBF[a]\nx = 1\n");
        assert!(matches!(file.problems[0].kind, ProblemKind::ByteOrderMark));
        assert_eq!(text(&file, "a", "x"), Some("1"));
        let file = parse(Path::new("c"), b"[a]\nx = 1\ny = \xFF\n");
        assert!(matches!(
            file.problems[0],
            Problem {
                line: 3,
                kind: ProblemKind::NotUtf8,
                ..
            }
        ));
    }

    #[test]
    fn headers_are_permissive_like_configparser() {
        assert_eq!(section_header("[profile a] # x"), Some("profile a"));
        assert_eq!(section_header("[a]b]"), Some("a]b"));
        assert_eq!(section_header("[]"), None);
        assert_eq!(section_header("[ spaced ]"), Some(" spaced "));
    }

    #[test]
    fn shell_words_follow_shlex() {
        assert_eq!(
            shell_words("profile  'my team'"),
            Some(vec!["profile".into(), "my team".into()])
        );
        assert_eq!(
            shell_words(r#"profile "a \"b\" \c""#),
            Some(vec!["profile".into(), r#"a "b" \c"#.into()])
        );
        assert_eq!(shell_words("profile 'open"), None);
        assert_eq!(shell_words("profile a\\"), None);
        assert_eq!(shell_words(r"a\ b"), Some(vec!["a b".into()]));
    }
}
