//! Deployed flow versions, compiled once each, with the text and file each
//! was deployed from. Running cases stay on the version they started with;
//! new cases take the latest. The engine keeps it in step with the store's
//! `deployments` (`Engine::sync_deployments`), so every node knows every
//! deployment.

use crate::core::CompiledFlow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A shared handle: clones see the same deployments.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    versions: HashMap<(String, u32), Deployed>,
    latest: HashMap<String, u32>,
}

/// One deployed version: the compiled flow and where it came from.
#[derive(Clone, Debug)]
pub struct Deployed {
    pub flow: Arc<CompiledFlow>,
    /// The file (or `studio:…`, `pack:…`) it was deployed from.
    pub file: Arc<str>,
    pub source: Arc<str>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a compiled flow that has no stored text (tests, scenario runs).
    pub fn insert(&self, flow: CompiledFlow) -> Arc<CompiledFlow> {
        self.insert_deployed(flow, "", "")
    }

    /// Adds a compiled deployment; the highest revision of a flow is its latest.
    pub fn insert_deployed(
        &self,
        flow: CompiledFlow,
        file: &str,
        source: &str,
    ) -> Arc<CompiledFlow> {
        let flow = Arc::new(flow);
        let entry = Deployed {
            flow: flow.clone(),
            file: file.into(),
            source: source.into(),
        };
        let id = flow.flow.id.clone();
        let rev = flow.revision();
        let mut g = match self.inner.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.versions.insert((id.clone(), rev), entry);
        let latest = g.latest.entry(id).or_insert(rev);
        if *latest < rev {
            *latest = rev;
        }
        flow
    }

    pub fn get(&self, id: &str, revision: u32) -> Option<Arc<CompiledFlow>> {
        let g = match self.inner.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.versions
            .get(&(id.to_string(), revision))
            .map(|d| d.flow.clone())
    }

    pub fn latest(&self, id: &str) -> Option<Arc<CompiledFlow>> {
        self.latest_deployed(id).map(|d| d.flow)
    }

    /// The latest version of a flow with its text.
    pub fn latest_deployed(&self, id: &str) -> Option<Deployed> {
        let g = match self.inner.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let rev = *g.latest.get(id)?;
        g.versions.get(&(id.to_string(), rev)).cloned()
    }

    /// The latest flow for a `subflow` item: by flow id, flow name, or the
    /// item's basic or implementation code.
    pub fn find_item(&self, item: &str) -> Option<Arc<CompiledFlow>> {
        self.all_latest().into_iter().find(|f| {
            let fl = &f.flow;
            fl.id == item
                || fl.name == item
                || fl.item.basic_code.as_deref() == Some(item)
                || fl.item.impl_code.as_deref() == Some(item)
        })
    }

    /// The latest version of every flow, sorted by id.
    pub fn all_latest(&self) -> Vec<Arc<CompiledFlow>> {
        self.all_latest_deployed()
            .into_iter()
            .map(|d| d.flow)
            .collect()
    }

    /// The latest version of every flow with its text, sorted by id.
    pub fn all_latest_deployed(&self) -> Vec<Deployed> {
        let g = match self.inner.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut v: Vec<_> = g
            .latest
            .iter()
            .filter_map(|(id, rev)| g.versions.get(&(id.clone(), *rev)).cloned())
            .collect();
        v.sort_by(|a, b| a.flow.flow.id.cmp(&b.flow.flow.id));
        v
    }
}
