//! Form-encoded query requests (STS and EC2): the parameters, and the list conventions of each.

use std::collections::BTreeMap;

use super::AwsError;

/// The parameters of a query request, in the order they arrived, with lookups by name.
#[derive(Clone, Debug, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// Parse `application/x-www-form-urlencoded` text (a body or a URL query string).
    pub fn parse(text: &[u8]) -> Self {
        let mut map = BTreeMap::new();
        for (key, value) in form_urlencoded::parse(text) {
            map.insert(key.into_owned(), value.into_owned());
        }
        Self { map }
    }

    /// Merge parameters from another source (URL query into body); existing names win.
    pub fn merge(&mut self, other: Self) {
        for (k, v) in other.map {
            self.map.entry(k).or_insert(v);
        }
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// A required parameter, or the error `missing` builds.
    pub fn require(
        &self,
        name: &str,
        missing: impl FnOnce(&str) -> AwsError,
    ) -> Result<&str, AwsError> {
        self.get(name).ok_or_else(|| missing(name))
    }

    /// An integer parameter; `invalid` builds the error when it is not one.
    pub fn integer(
        &self,
        name: &str,
        invalid: impl FnOnce(&str, &str) -> AwsError,
    ) -> Result<Option<i64>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(name, text)),
        }
    }

    /// The values of a numbered list: `prefix.1`, `prefix.2`, … in index order (gaps allowed,
    /// as AWS allows them).
    pub fn list(&self, prefix: &str) -> Vec<&str> {
        self.indexed(prefix)
            .into_iter()
            .filter_map(|(_, rest, value)| rest.is_empty().then_some(value))
            .collect()
    }

    /// Members of a numbered list of structures: for `Filter`, the entries `Filter.N.rest = value`
    /// grouped by N, in index order, each as a map from `rest` to value.
    pub fn structures(&self, prefix: &str) -> Vec<BTreeMap<&str, &str>> {
        let mut by_index: BTreeMap<u32, BTreeMap<&str, &str>> = BTreeMap::new();
        for (index, rest, value) in self.indexed(prefix) {
            if let Some(member) = rest.strip_prefix('.') {
                by_index.entry(index).or_default().insert(member, value);
            }
        }
        by_index.into_values().collect()
    }

    /// Entries `prefix.N…` as (N, the text after N, value).
    fn indexed(&self, prefix: &str) -> Vec<(u32, &str, &str)> {
        let dotted = format!("{prefix}.");
        let mut out: Vec<(u32, &str, &str)> = self
            .map
            .range(dotted.clone()..)
            .take_while(|(k, _)| k.starts_with(&dotted))
            .filter_map(|(k, v)| {
                let tail = &k[dotted.len()..];
                let digits = tail
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(tail.len());
                let index = tail[..digits].parse().ok()?;
                Some((index, &tail[digits..], v.as_str()))
            })
            .collect();
        out.sort_by_key(|(i, rest, _)| (*i, *rest));
        out
    }

    /// Every parameter name (for detecting unknown ones).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

/// Values of a structure member that is itself a numbered list: `Value.1`, `Value.2`… of one
/// `Filter.N` entry.
pub fn member_list<'a>(structure: &BTreeMap<&'a str, &'a str>, member: &str) -> Vec<&'a str> {
    let dotted = format!("{member}.");
    let mut values: Vec<(u32, &str)> = structure
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(&dotted)
                .and_then(|i| i.parse().ok())
                .map(|i| (i, *v))
        })
        .collect();
    values.sort_by_key(|(i, _)| *i);
    values.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_and_structures_in_index_order() {
        let params = Params::parse(
            b"Action=DescribeInstances&InstanceId.2=i-b&InstanceId.1=i-a&InstanceId.10=i-c\
              &Filter.1.Name=tag%3Ateam&Filter.1.Value.2=web&Filter.1.Value.1=api\
              &Filter.2.Name=instance-state-name&Filter.2.Value.1=running",
        );
        assert_eq!(params.get("Action"), Some("DescribeInstances"));
        assert_eq!(params.list("InstanceId"), ["i-a", "i-b", "i-c"]);
        let filters = params.structures("Filter");
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[0].get("Name"), Some(&"tag:team"));
        assert_eq!(member_list(&filters[0], "Value"), ["api", "web"]);
        assert_eq!(member_list(&filters[1], "Value"), ["running"]);
    }
}
