//! Deployed flow versions, compiled once each. Running cases stay on the
//! version they started with; new cases take the latest.

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
    versions: HashMap<(String, u32), Arc<CompiledFlow>>,
    latest: HashMap<String, u32>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a compiled deployment; the highest revision of a flow is its latest.
    pub fn insert(&self, flow: CompiledFlow) -> Arc<CompiledFlow> {
        let flow = Arc::new(flow);
        let id = flow.flow.id.clone();
        let rev = flow.revision();
        let mut g = match self.inner.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.versions.insert((id.clone(), rev), flow.clone());
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
        g.versions.get(&(id.to_string(), revision)).cloned()
    }

    pub fn latest(&self, id: &str) -> Option<Arc<CompiledFlow>> {
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
        let g = match self.inner.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut v: Vec<_> = g
            .latest
            .iter()
            .filter_map(|(id, rev)| g.versions.get(&(id.clone(), *rev)).cloned())
            .collect();
        v.sort_by(|a, b| a.flow.id.cmp(&b.flow.id));
        v
    }
}
