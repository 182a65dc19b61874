//! The last list, in `inventory.json` in Postern's folder, so the next start shows it at once
//! (marked with its age) while a refresh runs. It holds what DescribeInstances and
//! DescribeInstanceInformation said (names, ids, tags, addresses), never a secret.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::inventory::listing::Part;
use crate::paths::{Paths, write_atomically};

/// The format's version: a cache of another version is ignored.
const VERSION: u32 = 2;

/// One complete listing: which identity × region parts it made, and when.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Listed {
    /// When it finished (seconds since the epoch).
    pub at: u64,
    /// Its parts, as (identity, region).
    pub parts: Vec<(String, String)>,
}

/// The cached parts, one per identity and region.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cache {
    version: u32,
    /// The parts.
    pub parts: Vec<Part>,
    /// The last complete listing of each request (identities and regions asked for), so a
    /// request is answered from the cache only with what it asked for.
    #[serde(default)]
    pub listings: BTreeMap<String, Listed>,
}

fn file(paths: &Paths) -> PathBuf {
    paths.home().join("inventory.json")
}

impl Cache {
    /// The cached list; empty when there is none or it cannot be read (it is only a cache).
    pub fn load(paths: &Paths) -> Self {
        std::fs::read_to_string(file(paths))
            .ok()
            .and_then(|text| serde_json::from_str::<Cache>(&text).ok())
            .filter(|cache| cache.version == VERSION)
            .unwrap_or_default()
    }

    /// Write it (atomically; other Postern processes see the old or the new list).
    pub fn store(&self, paths: &Paths) -> std::io::Result<()> {
        paths.ensure_home().map_err(std::io::Error::other)?;
        let text = serde_json::to_string(&Cache {
            version: VERSION,
            parts: self.parts.clone(),
            listings: self.listings.clone(),
        })
        .map_err(std::io::Error::other)?;
        write_atomically(&file(paths), &text)
    }

    /// Take in a fresh part: it replaces the same identity and region, unless it failed, in
    /// which case the old rows stay (with the new problem noted). A part with no region (the
    /// identity itself could not be used) is not kept.
    pub fn merge(&mut self, part: Part) {
        if part.region.is_empty() {
            return;
        }
        let old = self
            .parts
            .iter_mut()
            .find(|p| p.identity == part.identity && p.region == part.region);
        match old {
            Some(old) if part.problem.is_some() => old.problem = part.problem,
            Some(old) => *old = part,
            None => self.parts.push(part),
        }
    }

    /// The parts named, in order of identity then region (those the cache has).
    pub fn parts(&self, named: &[(String, String)]) -> Vec<Part> {
        let mut parts: Vec<Part> = self
            .parts
            .iter()
            .filter(|p| {
                named
                    .iter()
                    .any(|(i, r)| *i == p.identity && *r == p.region)
            })
            .cloned()
            .collect();
        parts.sort_by(|a, b| (&a.identity, &a.region).cmp(&(&b.identity, &b.region)));
        parts
    }
}
