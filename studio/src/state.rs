//! The server's state: the engine (which holds every deployment, the clock
//! and the store) and what only the server knows (the admin token, the
//! efficiency scheme, where files came from). The bottom of the crate: it
//! imports no route module.

use govflow_engine::app::registry::Deployed;
use govflow_engine::service::Engine;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    admin_token: String,
    /// The efficiency scheme (rules/efficiency.yaml), when there is one.
    efficiency: std::sync::RwLock<Option<Arc<govflow_engine::supervision::efficiency::Scheme>>>,
    /// Where the rule files were read from, and the region calendar files.
    places: std::sync::RwLock<(Option<std::path::PathBuf>, Vec<String>)>,
    /// Login attempts per address and per (login, address).
    pub(crate) throttle: crate::throttle::LoginThrottle,
}

impl AppState {
    pub fn new(engine: Engine, admin_token: String) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                engine,
                admin_token,
                efficiency: std::sync::RwLock::new(None),
                places: std::sync::RwLock::new((None, Vec::new())),
                throttle: crate::throttle::LoginThrottle::new(),
            }),
        }
    }

    /// The login throttle.
    pub(crate) fn inner_throttle(&self) -> &crate::throttle::LoginThrottle {
        &self.inner.throttle
    }

    pub fn set_efficiency(&self, scheme: govflow_engine::supervision::efficiency::Scheme) {
        if let Ok(mut g) = self.inner.efficiency.write() {
            *g = Some(Arc::new(scheme));
        }
    }

    /// Records where the rule files and the region calendars came from.
    pub fn set_places(&self, rules_dir: Option<std::path::PathBuf>, calendars: Vec<String>) {
        if let Ok(mut g) = self.inner.places.write() {
            *g = (rules_dir, calendars);
        }
    }

    pub(crate) fn rules_dir(&self) -> Option<std::path::PathBuf> {
        self.inner.places.read().ok().and_then(|g| g.0.clone())
    }

    pub(crate) fn calendar_files(&self) -> Vec<String> {
        self.inner
            .places
            .read()
            .map(|g| g.1.clone())
            .unwrap_or_default()
    }

    pub(crate) fn efficiency(
        &self,
    ) -> Option<Arc<govflow_engine::supervision::efficiency::Scheme>> {
        self.inner.efficiency.read().ok().and_then(|g| g.clone())
    }

    pub fn flow_count(&self) -> usize {
        self.flows().len()
    }

    /// The latest version of every deployed flow, by id: the engine's
    /// registry, which every node keeps in step with the store.
    pub(crate) fn flows(&self) -> BTreeMap<String, Deployed> {
        self.inner
            .engine
            .flows
            .all_latest_deployed()
            .into_iter()
            .map(|d| (d.flow.flow.id.clone(), d))
            .collect()
    }

    /// Reads after a deployment on another node see it: one marker lookup.
    pub(crate) async fn synced(&self) -> &AppState {
        self.inner.engine.sync_deployments().await;
        self
    }

    pub(crate) fn admin_token(&self) -> &str {
        &self.inner.admin_token
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Now, by the engine's clock.
    pub(crate) fn now(&self) -> govflow_engine::core::Time {
        self.inner.engine.now()
    }
}
