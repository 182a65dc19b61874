//! Tag rules: which instances are within a user's reach, by their tags.
//!
//! Rules live under `[[inventory.reach]]` in `settings.toml` (or in the org policy, which then
//! manages them: the user's rules are ignored). Each rule names tag keys and the values allowed
//! for each; an instance matches a rule when it has every tag the rule names with one of the
//! allowed values. An instance is within reach when it matches any rule that applies to the
//! identity looking at it.
//!
//! ```toml
//! # Every instance of the payments and core teams.
//! [[inventory.reach]]
//! tags = { team = ["payments", "core"] }
//!
//! # In the prod account, only instances whose `access` tag names the role: an identity in role
//! # `payments-oncall` reaches instances tagged `access = payments-oncall`.
//! [[inventory.reach]]
//! account = "210987654321"
//! tags = { access = "${role}", env = "prod*" }
//!
//! # Admin roles reach everything (an empty tags table matches every instance).
//! [[inventory.reach]]
//! role = ["*Admin", "Administrator*"]
//! tags = {}
//! ```
//!
//! - Values: a string or a list of strings. `*` stands for any run of characters (`prod*`,
//!   `*-web`, `*` for "has the tag, any value"); everything else matches exactly, case and all,
//!   as AWS compares tags.
//! - Placeholders in tag values: `${role}` is the identity's role name (an identity without a
//!   role matches no rule that uses it), `${account}` its account id. No others.
//! - Scope: `account` (account ids) and `role` (role names, `*` allowed) limit a rule to the
//!   identities they name. With rules written, an identity no rule applies to reaches nothing
//!   (an admin's rules for some roles never open everything to the others); with no rules at
//!   all, tags limit nothing.
//! - Values may be empty (`""` matches a tag whose value is empty, as AWS allows).
//! - A rule that cannot be read is an error naming the file, line and column, and then no
//!   instance is within reach until it is fixed (never everything).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::{Spanned, Value};

/// One `[[inventory.reach]]` entry as TOML gave it, each key with its place in the file.
pub(crate) type RawRule = Spanned<BTreeMap<String, Spanned<Value>>>;

/// Where a rule came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// The line of the rule (1-based).
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A value pattern: literal text with `*` wildcards, and in tag values `${role}` and
/// `${account}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Any,
    Role,
    Account,
}

impl Pattern {
    fn parse(text: &str, placeholders: bool) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if c == '*' {
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                if parts.last() != Some(&Part::Any) {
                    parts.push(Part::Any);
                }
                rest = &rest[1..];
            } else if let Some(after) = rest.strip_prefix("${") {
                let Some(end) = after.find('}') else {
                    return Err(format!(
                        "{text:?} opens a placeholder with `${{` but never closes it with `}}`"
                    ));
                };
                let name = &after[..end];
                if !placeholders {
                    return Err(format!(
                        "{text:?} uses a placeholder, but placeholders work only in tag values"
                    ));
                }
                let part = match name {
                    "role" => Part::Role,
                    "account" => Part::Account,
                    other => {
                        return Err(format!(
                            "unknown placeholder ${{{other}}} in {text:?}; use ${{role}} or ${{account}}"
                        ));
                    }
                };
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                parts.push(part);
                rest = &after[end + 1..];
            } else {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// Whether `value` matches for `who`; `None` when a placeholder has nothing to stand for
    /// (`${role}` for an identity without a role).
    fn matches(&self, value: &str, who: &Who<'_>) -> bool {
        let mut pieces: Vec<Option<&str>> = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            pieces.push(match part {
                Part::Text(text) => Some(text),
                Part::Any => None,
                Part::Role => match who.role {
                    Some(role) => Some(role),
                    None => return false,
                },
                Part::Account => Some(who.account),
            });
        }
        glob(&pieces, value)
    }
}

/// Match `value` against literal pieces (`Some`) and wildcards (`None`), in order.
fn glob(pieces: &[Option<&str>], value: &str) -> bool {
    // Literals joined between wildcards: the first must be a prefix, the last a suffix, the rest
    // found in order in between (the leftmost match is always safe for `*` globs).
    let mut segments: Vec<String> = vec![String::new()];
    for piece in pieces {
        match piece {
            Some(text) => {
                if let Some(last) = segments.last_mut() {
                    last.push_str(text);
                }
            }
            None => segments.push(String::new()),
        }
    }
    let [first, middle @ .., last] = segments.as_slice() else {
        // No wildcard: one literal.
        return segments.first().is_some_and(|only| value == only);
    };
    let Some(mut remaining) = value.strip_prefix(first.as_str()) else {
        return false;
    };
    for segment in middle {
        match remaining.find(segment.as_str()) {
            Some(at) => remaining = &remaining[at + segment.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last.as_str())
}

/// Whether `value` matches `pattern`: `*` for any run of characters, everything else exactly.
pub fn wildcard(pattern: &str, value: &str) -> bool {
    let pieces: Vec<Option<&str>> = pattern
        .split('*')
        .enumerate()
        .flat_map(|(i, text)| [(i > 0).then_some(None), Some(Some(text))])
        .flatten()
        .collect();
    glob(&pieces, value)
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(text) => f.write_str(text)?,
                Part::Any => f.write_str("*")?,
                Part::Role => f.write_str("${role}")?,
                Part::Account => f.write_str("${account}")?,
            }
        }
        Ok(())
    }
}

/// The identity an instance is judged for.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    /// The account id.
    pub account: &'a str,
    /// The role name (not its ARN), when the identity is a role.
    pub role: Option<&'a str>,
}

/// One tag rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The accounts it applies to (any when empty).
    pub accounts: Vec<Pattern>,
    /// The roles it applies to (any when empty).
    pub roles: Vec<Pattern>,
    /// Each tag key with its allowed values: all keys must be present with an allowed value.
    pub tags: BTreeMap<String, Vec<Pattern>>,
    /// Where it was written.
    pub origin: Origin,
}

impl Rule {
    fn applies_to(&self, who: &Who<'_>) -> bool {
        let any = |patterns: &[Pattern], value: Option<&str>| {
            patterns.is_empty() || value.is_some_and(|v| patterns.iter().any(|p| p.matches(v, who)))
        };
        any(&self.accounts, Some(who.account)) && any(&self.roles, who.role)
    }

    fn matches(&self, who: &Who<'_>, tags: &BTreeMap<String, String>) -> bool {
        self.tags.iter().all(|(key, allowed)| {
            tags.get(key)
                .is_some_and(|value| allowed.iter().any(|p| p.matches(value, who)))
        })
    }
}

/// A tag rule that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct RuleError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong, and what to write instead.
    pub message: String,
}

/// The tag rules in force.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Reach {
    /// No rules: tags limit nothing.
    #[default]
    Unlimited,
    /// These rules.
    Rules(Vec<Rule>),
    /// Rules that cannot be used: nothing is within reach until they are fixed.
    Invalid(Vec<RuleError>),
}

/// Whether an instance's tags put it within reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagVerdict {
    /// Within reach (no rules at all, or a rule that applies matched).
    Within,
    /// Rules apply and none matched.
    Outside,
    /// The rules are broken: not within reach.
    RulesInvalid,
}

impl Reach {
    /// Judge an instance with `tags` for `who`.
    pub fn judge(&self, who: &Who<'_>, tags: &BTreeMap<String, String>) -> TagVerdict {
        match self {
            Reach::Unlimited => TagVerdict::Within,
            Reach::Invalid(_) => TagVerdict::RulesInvalid,
            Reach::Rules(rules) => {
                if rules.is_empty() {
                    return TagVerdict::Within;
                }
                if rules
                    .iter()
                    .any(|r| r.applies_to(who) && r.matches(who, tags))
                {
                    TagVerdict::Within
                } else {
                    TagVerdict::Outside
                }
            }
        }
    }

    /// The errors, when the rules cannot be used.
    pub fn errors(&self) -> &[RuleError] {
        match self {
            Reach::Invalid(errors) => errors,
            _ => &[],
        }
    }

    /// Read the rules of one file: `raw` as TOML gave them, `text` the file's text (for lines
    /// and columns).
    pub(crate) fn from_raw(file: &Path, text: &str, raw: &[RawRule]) -> Self {
        let place = |span: Range<usize>, message: String| {
            let (line, column) = line_and_column(text, span.start);
            RuleError {
                file: file.to_owned(),
                line,
                column,
                message,
            }
        };
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for entry in raw {
            match read_rule(entry, file, text) {
                Ok(rule) => rules.push(rule),
                Err((span, message)) => errors.push(place(span, message)),
            }
        }
        if errors.is_empty() {
            Reach::Rules(rules)
        } else {
            Reach::Invalid(errors)
        }
    }
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
pub(crate) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

const RULE_KEYS: &str = "`tags`, `account` and `role`";

fn read_rule(entry: &RawRule, file: &Path, text: &str) -> Result<Rule, (Range<usize>, String)> {
    let fields = entry.get_ref();
    for (key, value) in fields {
        if !["tags", "account", "role"].contains(&key.as_str()) {
            return Err((
                value.span(),
                format!("a reach rule takes {RULE_KEYS}, not `{key}`"),
            ));
        }
    }
    let Some(tags_value) = fields.get("tags") else {
        return Err((
            entry.span(),
            "this reach rule has no `tags`; name the tags an instance needs \
             (`tags = { team = \"payments\" }`), or write `tags = {}` for every instance"
                .into(),
        ));
    };
    let Value::Table(table) = tags_value.get_ref() else {
        return Err((
            tags_value.span(),
            "`tags` must be a table of tag keys and allowed values, \
             like `tags = { team = [\"payments\", \"core\"] }`"
                .into(),
        ));
    };
    let mut tags = BTreeMap::new();
    for (key, value) in table {
        // TOML keeps no place for values inside a table: point at the key's first mention in it.
        let at = key_place(text, tags_value.span(), key);
        if key.is_empty() || key.chars().count() > 128 {
            return Err((
                at,
                format!("tag key {key:?} must be 1 to 128 characters long"),
            ));
        }
        let values = patterns(value, true)
            .map_err(|message| (at.clone(), format!("tag `{key}`: {message}")))?;
        tags.insert(key.clone(), values);
    }
    let scope = |name: &str| -> Result<Vec<Pattern>, (Range<usize>, String)> {
        match fields.get(name) {
            None => Ok(Vec::new()),
            Some(value) => patterns(value.get_ref(), false)
                .map_err(|message| (value.span(), format!("`{name}`: {message}"))),
        }
    };
    let accounts = scope("account")?;
    let roles = scope("role")?;
    let (line, _) = line_and_column(text, entry.span().start);
    Ok(Rule {
        accounts,
        roles,
        tags,
        origin: Origin {
            file: file.to_owned(),
            line,
        },
    })
}

/// Where `key` is written inside `span` of `text` (bare or quoted, followed by `=`), or the
/// span's start when it cannot be found.
fn key_place(text: &str, span: Range<usize>, key: &str) -> Range<usize> {
    // A table written under its own header (`[inventory.reach.tags]`): its keys follow, up to
    // the next header.
    let span = if text.get(span.clone()).is_some_and(|t| t.starts_with('[')) {
        let rest = text.get(span.end..).unwrap_or("");
        let body_end = rest
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .find(|&i| rest[i..].trim_start().starts_with('['))
            .unwrap_or(rest.len());
        span.start..span.end + body_end
    } else {
        span
    };
    let inside = text.get(span.clone()).unwrap_or("");
    for written in [key.to_owned(), format!("\"{key}\""), format!("'{key}'")] {
        let mut from = 0;
        while let Some(found) = inside[from..].find(&written) {
            let start = from + found;
            let end = start + written.len();
            let before_ok = inside[..start]
                .chars()
                .next_back()
                .is_none_or(|c| c.is_whitespace() || c == '{' || c == ',' || c == '.');
            let after_ok = inside[end..].trim_start().starts_with('=');
            if before_ok && after_ok && !key.is_empty() {
                return span.start + start..span.start + end;
            }
            from = end;
        }
    }
    span
}

/// A string or a list of strings, as patterns.
fn patterns(value: &Value, placeholders: bool) -> Result<Vec<Pattern>, String> {
    let texts: Vec<&str> = match value {
        Value::String(text) => vec![text],
        Value::Array(items) => {
            let mut texts = Vec::new();
            for item in items {
                match item {
                    Value::String(text) => texts.push(text.as_str()),
                    other => {
                        return Err(format!(
                            "values must be strings, but one is {} (write it in quotes)",
                            other.type_str()
                        ));
                    }
                }
            }
            if texts.is_empty() {
                return Err(
                    "the list of values is empty, so nothing could match; list at least one \
                     value, or `\"*\"` for any"
                        .into(),
                );
            }
            texts
        }
        other => {
            return Err(format!(
                "expected a string or a list of strings, found {}",
                other.type_str()
            ));
        }
    };
    texts
        .into_iter()
        .map(|text| Pattern::parse(text, placeholders))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct File {
        inventory: Inventory,
    }

    #[derive(serde::Deserialize)]
    struct Inventory {
        reach: Vec<RawRule>,
    }

    fn reach(text: &str) -> Reach {
        let file: File = toml::from_str(text).expect("toml");
        Reach::from_raw(Path::new("settings.toml"), text, &file.inventory.reach)
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const DEV: Who<'static> = Who {
        account: "111111111111",
        role: Some("developer"),
    };
    const ADMIN: Who<'static> = Who {
        account: "222222222222",
        role: Some("OrgAdmin"),
    };
    const USER: Who<'static> = Who {
        account: "111111111111",
        role: None,
    };

    #[test]
    fn wildcards_lists_and_every_key() {
        let rules = reach(
            r#"
[[inventory.reach]]
tags = { team = ["payments", "core"], env = "prod*" }

[[inventory.reach]]
tags = { owner = "*@example.com" }
"#,
        );
        let judge = |t: &[(&str, &str)]| rules.judge(&DEV, &tags(t));
        assert_eq!(
            judge(&[("team", "core"), ("env", "prod-eu")]),
            TagVerdict::Within
        );
        assert_eq!(
            judge(&[("team", "core")]),
            TagVerdict::Outside,
            "env missing"
        );
        assert_eq!(
            judge(&[("team", "Core"), ("env", "prod")]),
            TagVerdict::Outside,
            "case matters"
        );
        assert_eq!(judge(&[("owner", "jo@example.com")]), TagVerdict::Within);
        assert_eq!(judge(&[("owner", "jo@example.org")]), TagVerdict::Outside);
        assert_eq!(judge(&[]), TagVerdict::Outside);
    }

    #[test]
    fn placeholders_name_who_may_enter() {
        let rules = reach(
            r#"
[[inventory.reach]]
tags = { access = ["${role}", "${account}-*"] }
"#,
        );
        assert_eq!(
            rules.judge(&DEV, &tags(&[("access", "developer")])),
            TagVerdict::Within
        );
        assert_eq!(
            rules.judge(&DEV, &tags(&[("access", "111111111111-ops")])),
            TagVerdict::Within
        );
        assert_eq!(
            rules.judge(&ADMIN, &tags(&[("access", "developer")])),
            TagVerdict::Outside
        );
        // No role, nothing for ${role} to stand for.
        assert_eq!(
            rules.judge(&USER, &tags(&[("access", "")])),
            TagVerdict::Outside
        );
    }

    #[test]
    fn scoped_rules_limit_only_their_identities() {
        let rules = reach(
            r#"
[[inventory.reach]]
account = "111111111111"
tags = { team = "payments" }

[[inventory.reach]]
role = ["*Admin"]
tags = {}
"#,
        );
        assert_eq!(
            rules.judge(&DEV, &tags(&[("team", "search")])),
            TagVerdict::Outside
        );
        assert_eq!(
            rules.judge(&DEV, &tags(&[("team", "payments")])),
            TagVerdict::Within
        );
        // The admin rule matches every instance.
        assert_eq!(rules.judge(&ADMIN, &tags(&[])), TagVerdict::Within);
        // An identity no rule applies to reaches nothing: rules never fail open.
        let contractor = Who {
            account: "333333333333",
            role: Some("contractor"),
        };
        assert_eq!(
            rules.judge(&contractor, &tags(&[("team", "payments")])),
            TagVerdict::Outside
        );
        // An empty value matches an empty tag.
        let empty = reach("[[inventory.reach]]\ntags = { note = \"\" }\n");
        assert_eq!(
            empty.judge(&DEV, &tags(&[("note", "")])),
            TagVerdict::Within
        );
        assert_eq!(
            empty.judge(&DEV, &tags(&[("note", "x")])),
            TagVerdict::Outside
        );
        // No rules at all: nothing limited.
        assert_eq!(Reach::Unlimited.judge(&DEV, &tags(&[])), TagVerdict::Within);
        assert_eq!(
            Reach::Rules(Vec::new()).judge(&DEV, &tags(&[])),
            TagVerdict::Within
        );
    }

    #[test]
    fn bad_rules_name_the_place_and_refuse_everything() {
        let cases = [
            (
                "[[inventory.reach]]\ntags = { team = 5 }\n",
                2,
                10,
                "tag `team`: expected a string",
            ),
            (
                "[[inventory.reach]]\ntags = { access = \"${user}\" }\n",
                2,
                10,
                "unknown placeholder ${user}",
            ),
            (
                "[[inventory.reach]]\nrole = \"${role}\"\ntags = {}\n",
                2,
                8,
                "placeholders work only in tag values",
            ),
            (
                "[[inventory.reach]]\naccount = \"1\"\n",
                1,
                1,
                "has no `tags`",
            ),
            (
                "[[inventory.reach]]\ntags = {}\nteam = \"x\"\n",
                3,
                8,
                "not `team`",
            ),
            (
                "[[inventory.reach]]\ntags = { env = \"x\", team = [] }\n",
                2,
                21,
                "list of values is empty",
            ),
            (
                "[[inventory.reach]]\ntags = { team = \"${role\" }\n",
                2,
                10,
                "never closes",
            ),
            (
                "[[inventory.reach]]\n[inventory.reach.tags]\nenv = \"prod\"\nteam = 5\n",
                4,
                1,
                "tag `team`: expected a string",
            ),
        ];
        for (text, line, column, words) in cases {
            let rules = reach(text);
            let errors = rules.errors();
            assert_eq!(errors.len(), 1, "{text}");
            let error = &errors[0];
            assert_eq!(
                (error.line, error.column),
                (line, column),
                "{text}: {error}"
            );
            let shown = error.to_string();
            assert!(shown.starts_with("settings.toml:"), "{shown}");
            assert!(shown.contains(words), "{text}: {shown}");
            assert_eq!(
                rules.judge(&DEV, &tags(&[("team", "x")])),
                TagVerdict::RulesInvalid
            );
        }
    }

    #[test]
    fn globs() {
        let who = DEV;
        let matches = |pattern: &str, value: &str| {
            Pattern::parse(pattern, true)
                .expect("pattern")
                .matches(value, &who)
        };
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "a-b-b-c"));
        assert!(!matches("a*b*c", "a-c-b"));
        assert!(matches("**x", "yx"));
        assert!(!matches("ab*ba", "aba"));
        assert!(matches("ab*ba", "abba"));
        assert!(matches("dév*", "dévelop"));
        assert!(wildcard("pay*", "payments") && wildcard("*-1", "eu-west-1"));
        assert!(wildcard("", "") && !wildcard("", "x") && wildcard("a*", "a"));
        assert!(!wildcard("pay*", "prepay") && wildcard("*pay*", "prepayment"));
        assert!(matches("${role}", "developer"));
        assert!(!matches("${role}", "developers"));
        assert_eq!(
            Pattern::parse("a*${role}-${account}", true)
                .expect("pattern")
                .to_string(),
            "a*${role}-${account}"
        );
    }
}
