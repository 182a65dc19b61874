//! IAM policy documents and their evaluation: the subset of IAM's language the sandbox enforces.
//!
//! Supported: `Effect` Allow/Deny; `Action`/`NotAction` and `Resource`/`NotResource` with `*` and
//! `?` wildcards (actions match case-insensitively, resources case-sensitively); `Principal` in
//! trust policies (`"*"`, `{"AWS": …}` with account ids, `arn:aws:iam::<id>:root`, user and role
//! ARNs; `Service` and `Federated` principals never match a caller); conditions `StringEquals`,
//! `StringNotEquals`, `StringEqualsIgnoreCase`, `StringLike`, `StringNotLike`, `Bool`,
//! `NumericLessThan(Equals)`, `NumericGreaterThan(Equals)` and `Null`, each with an `IfExists`
//! form, with keys matched case-insensitively and `${aws:username}`-style variables expanded in
//! resources and condition values. A statement's condition operators are ANDed, values within one
//! key are ORed, as in IAM. Not supported (an error at scenario load, never silently ignored):
//! `ForAllValues:`/`ForAnyValue:` set operators, date and IP operators, `NotPrincipal`.
//!
//! Evaluation follows IAM's order: an explicit Deny wins, then any Allow, otherwise the request
//! is implicitly denied.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A policy document as IAM stores it.
#[derive(Clone, Debug, Default)]
pub struct PolicyDocument {
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

/// One statement of a policy.
#[derive(Clone, Debug)]
pub struct Statement {
    /// `Sid`, kept for error messages.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// Who the statement is about (trust policies only).
    pub principal: Option<PrincipalSpec>,
    /// The actions the statement covers.
    pub actions: Matcher,
    /// The resources it covers; absent in trust policies (the role itself is the resource).
    pub resources: Option<Matcher>,
    /// Conditions, all of which must hold.
    pub conditions: Vec<Condition>,
}

/// Allow or Deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Grants the request.
    Allow,
    /// Refuses the request, whatever else allows it.
    Deny,
}

/// `Action` vs `NotAction` (and the same for resources): patterns that must, or must not, match.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// True for the `Not…` form.
    pub negated: bool,
    /// The patterns, with `*` and `?` wildcards.
    pub patterns: Vec<String>,
}

/// The principals of a trust-policy statement.
#[derive(Clone, Debug)]
pub enum PrincipalSpec {
    /// `"Principal": "*"` or `{"AWS": "*"}`: anyone.
    Anyone,
    /// AWS principals: account ids, account root ARNs, user or role ARNs.
    Aws(Vec<String>),
    /// Service or federated principals: they never match an IAM caller.
    Other,
}

/// One `operator: { key: values }` entry of a `Condition` block.
#[derive(Clone, Debug)]
pub struct Condition {
    /// The operator, without its `IfExists` suffix.
    pub operator: Operator,
    /// True for `…IfExists`: a missing key satisfies the condition.
    pub if_exists: bool,
    /// The context key, lowercased.
    pub key: String,
    /// The values, any of which may match.
    pub values: Vec<String>,
}

/// The condition operators the sandbox understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// `StringEquals`.
    StringEquals,
    /// `StringNotEquals`.
    StringNotEquals,
    /// `StringEqualsIgnoreCase`.
    StringEqualsIgnoreCase,
    /// `StringLike`.
    StringLike,
    /// `StringNotLike`.
    StringNotLike,
    /// `Bool`.
    Bool,
    /// `NumericLessThan`.
    NumericLessThan,
    /// `NumericLessThanEquals`.
    NumericLessThanEquals,
    /// `NumericGreaterThan`.
    NumericGreaterThan,
    /// `NumericGreaterThanEquals`.
    NumericGreaterThanEquals,
    /// `Null`: "true" means the key must be absent, "false" that it must be present.
    Null,
}

/// A policy that IAM would refuse to store, or that uses what the sandbox does not implement.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The document is not JSON, or not shaped like a policy.
    #[error("the policy is not a valid IAM policy document: {0}")]
    Malformed(String),
    /// The document uses an operator or element the sandbox does not evaluate.
    #[error(
        "the policy uses {0}, which the sandbox does not evaluate; rewrite the statement without it"
    )]
    Unsupported(String),
}

impl PolicyDocument {
    /// Parse a policy document from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::Malformed(e.to_string()))?;
        Self::from_value(&value)
    }

    /// Parse a policy document from an already-parsed JSON (or TOML-converted) value.
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let object = value
            .as_object()
            .ok_or_else(|| PolicyError::Malformed("a policy is a JSON object".into()))?;
        let statements = match object.get("Statement") {
            Some(Value::Array(items)) => items.iter().map(Statement::from_value).collect(),
            Some(item @ Value::Object(_)) => Statement::from_value(item).map(|s| vec![s]),
            _ => Err(PolicyError::Malformed("a policy needs a Statement".into())),
        }?;
        Ok(Self { statements })
    }
}

impl<'de> Deserialize<'de> for PolicyDocument {
    /// A policy is written either as IAM's JSON text (a string) or as a table.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let parsed = match &value {
            Value::String(text) => Self::from_json(text),
            other => Self::from_value(other),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        Value::Number(n) => Ok(vec![n.to_string()]),
        Value::Array(items) => {
            items
                .iter()
                .map(|item| strings(item, what))
                .try_fold(Vec::new(), |mut all, more| {
                    all.extend(more?);
                    Ok(all)
                })
        }
        _ => Err(PolicyError::Malformed(format!(
            "{what} must be a string or a list of strings"
        ))),
    }
}

impl Statement {
    fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let object = value
            .as_object()
            .ok_or_else(|| PolicyError::Malformed("a statement is a JSON object".into()))?;
        let effect = match object.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => {
                return Err(PolicyError::Malformed(
                    "Effect must be \"Allow\" or \"Deny\"".into(),
                ));
            }
        };
        if object.contains_key("NotPrincipal") {
            return Err(PolicyError::Unsupported("NotPrincipal".into()));
        }
        let principal = object
            .get("Principal")
            .map(PrincipalSpec::from_value)
            .transpose()?;
        let actions = matcher(object, "Action", "NotAction")?.ok_or_else(|| {
            PolicyError::Malformed("a statement needs Action or NotAction".into())
        })?;
        let resources = matcher(object, "Resource", "NotResource")?;
        let conditions = match object.get("Condition") {
            None => Vec::new(),
            Some(block) => Condition::from_block(block)?,
        };
        Ok(Self {
            sid: object.get("Sid").and_then(Value::as_str).map(str::to_owned),
            effect,
            principal,
            actions,
            resources,
            conditions,
        })
    }
}

fn matcher(
    object: &serde_json::Map<String, Value>,
    positive: &str,
    negative: &str,
) -> Result<Option<Matcher>, PolicyError> {
    match (object.get(positive), object.get(negative)) {
        (Some(_), Some(_)) => Err(PolicyError::Malformed(format!(
            "a statement has either {positive} or {negative}"
        ))),
        (Some(v), None) => Ok(Some(Matcher {
            negated: false,
            patterns: strings(v, positive)?,
        })),
        (None, Some(v)) => Ok(Some(Matcher {
            negated: true,
            patterns: strings(v, negative)?,
        })),
        (None, None) => Ok(None),
    }
}

impl PrincipalSpec {
    fn from_value(value: &Value) -> Result<Self, PolicyError> {
        match value {
            Value::String(s) if s == "*" => Ok(Self::Anyone),
            Value::Object(map) => {
                if let Some(aws) = map.get("AWS") {
                    let ids = strings(aws, "Principal.AWS")?;
                    if ids.iter().any(|id| id == "*") {
                        return Ok(Self::Anyone);
                    }
                    return Ok(Self::Aws(ids));
                }
                Ok(Self::Other)
            }
            _ => Err(PolicyError::Malformed(
                "Principal must be \"*\" or an object".into(),
            )),
        }
    }
}

impl Condition {
    fn from_block(block: &Value) -> Result<Vec<Self>, PolicyError> {
        let operators = block
            .as_object()
            .ok_or_else(|| PolicyError::Malformed("Condition must be an object".into()))?;
        let mut conditions = Vec::new();
        for (name, entries) in operators {
            if name.contains(':') {
                return Err(PolicyError::Unsupported(format!("the set operator {name}")));
            }
            let (base, if_exists) = match name.strip_suffix("IfExists") {
                Some(base) => (base, true),
                None => (name.as_str(), false),
            };
            let operator = match base {
                "StringEquals" => Operator::StringEquals,
                "StringNotEquals" => Operator::StringNotEquals,
                "StringEqualsIgnoreCase" => Operator::StringEqualsIgnoreCase,
                "StringLike" => Operator::StringLike,
                "StringNotLike" => Operator::StringNotLike,
                "Bool" => Operator::Bool,
                "NumericLessThan" => Operator::NumericLessThan,
                "NumericLessThanEquals" => Operator::NumericLessThanEquals,
                "NumericGreaterThan" => Operator::NumericGreaterThan,
                "NumericGreaterThanEquals" => Operator::NumericGreaterThanEquals,
                "Null" => Operator::Null,
                other => {
                    return Err(PolicyError::Unsupported(format!(
                        "the condition operator {other}"
                    )));
                }
            };
            let entries = entries
                .as_object()
                .ok_or_else(|| PolicyError::Malformed(format!("{name} must map keys to values")))?;
            for (key, values) in entries {
                conditions.push(Self {
                    operator,
                    if_exists,
                    key: key.to_ascii_lowercase(),
                    values: strings(values, key)?,
                });
            }
        }
        Ok(conditions)
    }

    fn holds(&self, context: &RequestContext<'_>) -> bool {
        let Some(actual) = context.value(&self.key) else {
            return match self.operator {
                Operator::Null => self.values.iter().any(|v| v.eq_ignore_ascii_case("true")),
                // Negated string operators are satisfied by a missing key, as in IAM.
                Operator::StringNotEquals | Operator::StringNotLike => true,
                _ => self.if_exists,
            };
        };
        let expected = self.values.iter().map(|v| context.expand(v));
        match self.operator {
            Operator::Null => self.values.iter().any(|v| v.eq_ignore_ascii_case("false")),
            Operator::StringEquals => expected.into_iter().any(|v| v == actual),
            Operator::StringNotEquals => expected.into_iter().all(|v| v != actual),
            Operator::StringEqualsIgnoreCase => {
                expected.into_iter().any(|v| v.eq_ignore_ascii_case(actual))
            }
            Operator::StringLike => expected.into_iter().any(|v| wildcard_match(&v, actual)),
            Operator::StringNotLike => expected.into_iter().all(|v| !wildcard_match(&v, actual)),
            Operator::Bool => expected.into_iter().any(|v| v.eq_ignore_ascii_case(actual)),
            Operator::NumericLessThan
            | Operator::NumericLessThanEquals
            | Operator::NumericGreaterThan
            | Operator::NumericGreaterThanEquals => {
                let Ok(actual) = actual.parse::<f64>() else {
                    return false;
                };
                expected
                    .into_iter()
                    .filter_map(|v| v.parse::<f64>().ok())
                    .any(|v| match self.operator {
                        Operator::NumericLessThan => actual < v,
                        Operator::NumericLessThanEquals => actual <= v,
                        Operator::NumericGreaterThan => actual > v,
                        _ => actual >= v,
                    })
            }
        }
    }
}

/// What a request asks for, as policies see it.
#[derive(Debug)]
pub struct RequestContext<'a> {
    /// The action, `service:Operation`.
    pub action: &'a str,
    /// The resource ARN (`*` for actions without resource-level permissions).
    pub resource: &'a str,
    /// Context keys, lowercased, with their values.
    pub keys: &'a BTreeMap<String, String>,
}

impl RequestContext<'_> {
    fn value(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }

    /// Replace `${key}` policy variables with the request's values (IAM leaves unknown ones as
    /// an impossible match; the sandbox does the same by keeping them literally).
    fn expand(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let key = &after[..end];
            match key {
                "*" | "?" | "$" => out.push_str(key),
                _ => match self.value(&key.to_ascii_lowercase()) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&rest[start..start + 3 + end]),
                },
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// The outcome of evaluating policies for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An Allow statement matched and no Deny did.
    Allowed,
    /// A Deny statement matched.
    ExplicitlyDenied,
    /// Nothing matched.
    ImplicitlyDenied,
}

/// Evaluate identity policies (statements without `Principal`) for a request.
pub fn evaluate<'p>(
    policies: impl IntoIterator<Item = &'p PolicyDocument>,
    context: &RequestContext<'_>,
) -> Decision {
    evaluate_with(policies, context, |_| true)
}

/// Evaluate statements for a request, counting only statements `applies` accepts (a trust
/// policy passes a principal check here).
pub fn evaluate_with<'p>(
    policies: impl IntoIterator<Item = &'p PolicyDocument>,
    context: &RequestContext<'_>,
    applies: impl Fn(&Statement) -> bool,
) -> Decision {
    let mut allowed = false;
    for statement in policies.into_iter().flat_map(|p| &p.statements) {
        if !applies(statement) || !statement.matches(context) {
            continue;
        }
        match statement.effect {
            Effect::Deny => return Decision::ExplicitlyDenied,
            Effect::Allow => allowed = true,
        }
    }
    if allowed {
        Decision::Allowed
    } else {
        Decision::ImplicitlyDenied
    }
}

impl Statement {
    /// Whether the statement's action, resource and conditions cover the request.
    pub fn matches(&self, context: &RequestContext<'_>) -> bool {
        let action_hit = self.actions.patterns.iter().any(|p| {
            wildcard_match(
                &p.to_ascii_lowercase(),
                &context.action.to_ascii_lowercase(),
            )
        });
        if action_hit == self.actions.negated {
            return false;
        }
        if let Some(resources) = &self.resources {
            let hit = resources
                .patterns
                .iter()
                .any(|p| wildcard_match(&context.expand(p), context.resource));
            if hit == resources.negated {
                return false;
            }
        }
        self.conditions.iter().all(|c| c.holds(context))
    }
}

/// IAM's wildcard match: `*` is any run of characters, `?` any one character.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let (mut star, mut resume) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            resume = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            resume += 1;
            t = resume;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(
        action: &'a str,
        resource: &'a str,
        keys: &'a BTreeMap<String, String>,
    ) -> RequestContext<'a> {
        RequestContext {
            action,
            resource,
            keys,
        }
    }

    #[test]
    fn wildcards_match_like_iam() {
        assert!(wildcard_match("ssm:Start*", "ssm:StartSession"));
        assert!(wildcard_match("i-0?b*", "i-0abc123"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("ssm:Start*", "ssm:ResumeSession"));
        assert!(!wildcard_match("i-0?c", "i-0abc"));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(!wildcard_match("a*b*c", "axxbyy"));
    }

    #[test]
    fn explicit_deny_beats_allow_and_nothing_means_deny() {
        let policy = PolicyDocument::from_json(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"ssm:*","Resource":"*"},
                {"Effect":"Deny","Action":"ssm:StartSession","Resource":"arn:aws:ec2:*:*:instance/i-0bad*"}]}"#,
        )
        .expect("valid policy");
        let keys = BTreeMap::new();
        let ok = context(
            "ssm:StartSession",
            "arn:aws:ec2:us-east-1:1:instance/i-0good",
            &keys,
        );
        let bad = context(
            "ssm:StartSession",
            "arn:aws:ec2:us-east-1:1:instance/i-0bad1",
            &keys,
        );
        let other = context("ec2:DescribeInstances", "*", &keys);
        assert_eq!(evaluate([&policy], &ok), Decision::Allowed);
        assert_eq!(evaluate([&policy], &bad), Decision::ExplicitlyDenied);
        assert_eq!(evaluate([&policy], &other), Decision::ImplicitlyDenied);
    }

    #[test]
    fn not_action_and_conditions_with_variables() {
        let policy = PolicyDocument::from_json(
            r#"{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*",
                "Condition":{"StringLike":{"ssm:resourceTag/Owner":"${aws:username}*"},
                             "Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}"#,
        )
        .expect("valid policy");
        let mut keys = BTreeMap::new();
        keys.insert("aws:username".into(), "alice".into());
        keys.insert("ssm:resourcetag/owner".into(), "alice-team".into());
        keys.insert("aws:multifactorauthpresent".into(), "true".into());
        assert_eq!(
            evaluate([&policy], &context("ssm:StartSession", "x", &keys)),
            Decision::Allowed
        );
        assert_eq!(
            evaluate([&policy], &context("iam:CreateUser", "x", &keys)),
            Decision::ImplicitlyDenied
        );
        keys.insert("aws:multifactorauthpresent".into(), "false".into());
        assert_eq!(
            evaluate([&policy], &context("ssm:StartSession", "x", &keys)),
            Decision::ImplicitlyDenied
        );
        keys.remove("aws:multifactorauthpresent");
        assert_eq!(
            evaluate([&policy], &context("ssm:StartSession", "x", &keys)),
            Decision::ImplicitlyDenied,
            "a missing key fails a plain Bool condition"
        );
    }

    #[test]
    fn if_exists_and_null() {
        let policy = PolicyDocument::from_json(
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*",
                "Condition":{"StringEqualsIfExists":{"ssm:resourceTag/team":"data"},
                             "Null":{"sts:SourceIdentity":"false"}}}}"#,
        )
        .expect("valid policy");
        let mut keys = BTreeMap::new();
        assert_eq!(
            evaluate([&policy], &context("a:b", "r", &keys)),
            Decision::ImplicitlyDenied
        );
        keys.insert("sts:sourceidentity".into(), "alice".into());
        assert_eq!(
            evaluate([&policy], &context("a:b", "r", &keys)),
            Decision::Allowed
        );
        keys.insert("ssm:resourcetag/team".into(), "web".into());
        assert_eq!(
            evaluate([&policy], &context("a:b", "r", &keys)),
            Decision::ImplicitlyDenied
        );
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        for text in [
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAnyValue:StringLike":{"a":"b"}}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2020-01-01"}}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"*"}]}"#,
        ] {
            assert!(matches!(
                PolicyDocument::from_json(text),
                Err(PolicyError::Unsupported(_))
            ));
        }
        assert!(PolicyDocument::from_json("{}").is_err());
        assert!(
            PolicyDocument::from_json(r#"{"Statement":[{"Effect":"Maybe","Action":"*"}]}"#)
                .is_err()
        );
    }
}
