//! The JWKS cache of one issuer: keys fetched through a [`KeySource`], refreshed when a token names an
//! unknown key, at most once per minimum interval.
//!
//! Why the rate limit: the `kid` comes from an unverified token, so without it anyone could make the
//! gateway hammer the IdP by sending random key ids. Why keep old keys on failure: an IdP outage must
//! not log everyone out whose token is signed by a key we already hold.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::keys::KeySet;
use crate::FetchError;

/// Where an issuer's JWKS document comes from. The gateway uses HTTP discovery; tests inject keys.
pub trait KeySource: Send + Sync {
    /// Fetches the raw JWKS document (`{"keys": [...]}`).
    fn fetch_jwks(&self) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, FetchError>> + Send + '_>>;
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

/// Cached keys plus the single-flight, rate-limited refresh.
pub(crate) struct JwksCache {
    source: Arc<dyn KeySource>,
    min_interval: Duration,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching, so concurrent misses wait for one fetch instead of starting their own.
    refresh: tokio::sync::Mutex<RefreshState>,
    /// The last refresh error, readable without waiting for an in-flight fetch.
    last_error: RwLock<Option<String>>,
}

impl JwksCache {
    pub fn new(source: Arc<dyn KeySource>, min_interval: Duration) -> Self {
        JwksCache {
            source,
            min_interval,
            keys: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            last_error: RwLock::new(None),
        }
    }

    /// The keys held now, if any were ever loaded.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The message of the last failed refresh, cleared by a successful one.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Refreshes after a key miss, unless a refresh was attempted within the minimum interval.
    ///
    /// `seen` is the key set the caller looked in (`None`: none loaded). If another task replaced it
    /// while we waited for the lock, its result is used and no fetch is made. Returns the keys to look
    /// in again, or an error when no keys are held at all.
    pub async fn refresh_after_miss(
        &self,
        seen: Option<&Arc<KeySet>>,
    ) -> Result<Arc<KeySet>, FetchError> {
        let mut state = self.refresh.lock().await;
        let current = self.current();
        let replaced = match (&current, seen) {
            (Some(now), Some(seen)) => !Arc::ptr_eq(now, seen),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if let (true, Some(keys)) = (replaced, &current) {
            return Ok(keys.clone());
        }
        let recently = state
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.min_interval);
        if recently {
            return match current {
                Some(keys) => Ok(keys),
                None => Err(FetchError::NotLoaded {
                    last_error: state.last_error.clone().unwrap_or_default(),
                }),
            };
        }
        self.fetch(&mut state).await.or_else(|e| current.ok_or(e))
    }

    /// Fetches now regardless of the rate limit (start-up warm-up, readiness retries).
    pub async fn force_refresh(&self) -> Result<Arc<KeySet>, FetchError> {
        let mut state = self.refresh.lock().await;
        self.fetch(&mut state).await
    }

    async fn fetch(&self, state: &mut RefreshState) -> Result<Arc<KeySet>, FetchError> {
        state.last_attempt = Some(Instant::now());
        let result = match self.source.fetch_jwks().await {
            Ok(bytes) => KeySet::from_jwks_json(&bytes).map(Arc::new),
            Err(e) => Err(e),
        };
        match &result {
            Ok(keys) => {
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Some(keys.clone());
                state.last_error = None;
            }
            // Keep whatever keys we had: see the module comment.
            Err(e) => state.last_error = Some(e.to_string()),
        }
        *self
            .last_error
            .write()
            .unwrap_or_else(PoisonError::into_inner) = state.last_error.clone();
        result
    }
}

#[cfg(test)]
pub(crate) mod tests;
