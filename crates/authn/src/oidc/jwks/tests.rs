use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use custos_testkit::jwt::jwks_of;
use custos_testkit::TestKey;

/// A key source that serves a swappable JWKS (or an error) and counts fetches.
pub(crate) struct FakeSource {
    pub jwks: Mutex<Option<serde_json::Value>>,
    pub fetches: AtomicUsize,
}

impl FakeSource {
    pub fn new(keys: &[TestKey]) -> Arc<Self> {
        Arc::new(FakeSource {
            jwks: Mutex::new(Some(jwks_of(keys))),
            fetches: AtomicUsize::new(0),
        })
    }

    pub fn serve(&self, keys: Option<&[TestKey]>) {
        *self.jwks.lock().expect("lock") = keys.map(jwks_of);
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl KeySource for FakeSource {
    fn fetch_jwks(&self) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, FetchError>> + Send + '_>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let body = self.jwks.lock().expect("lock").clone();
        Box::pin(async move {
            // Yield so concurrent callers really overlap with the fetch.
            tokio::task::yield_now().await;
            body.map(|v| v.to_string().into_bytes())
                .ok_or(FetchError::Status {
                    url: "https://idp/keys".into(),
                    status: 503,
                })
        })
    }
}

fn cache(source: &Arc<FakeSource>) -> JwksCache {
    JwksCache::new(source.clone(), Duration::from_secs(10))
}

#[tokio::test(start_paused = true)]
async fn first_miss_loads_keys() {
    let source = FakeSource::new(&[TestKey::RsaA]);
    let cache = cache(&source);
    assert!(cache.current().is_none());
    let keys = cache.refresh_after_miss(None).await.expect("loads");
    assert_eq!(keys.len(), 1);
    assert_eq!(source.fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn misses_within_the_interval_do_not_fetch_again() {
    let source = FakeSource::new(&[TestKey::RsaA]);
    let cache = cache(&source);
    let keys = cache.force_refresh().await.expect("loads");
    for _ in 0..50 {
        cache.refresh_after_miss(Some(&keys)).await.expect("cached");
    }
    assert_eq!(source.fetches(), 1);
    tokio::time::advance(Duration::from_secs(11)).await;
    cache
        .refresh_after_miss(Some(&keys))
        .await
        .expect("refetched");
    assert_eq!(source.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_fetch() {
    let source = FakeSource::new(&[TestKey::RsaA]);
    let cache = Arc::new(cache(&source));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.refresh_after_miss(None).await.map(|k| k.len()) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("join").expect("loaded"), 1);
    }
    assert_eq!(source.fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn failed_refresh_keeps_the_old_keys() {
    let source = FakeSource::new(&[TestKey::RsaA]);
    let cache = cache(&source);
    let keys = cache.force_refresh().await.expect("loads");
    source.serve(None);
    tokio::time::advance(Duration::from_secs(11)).await;
    let after = cache
        .refresh_after_miss(Some(&keys))
        .await
        .expect("old keys kept");
    assert!(Arc::ptr_eq(&after, &keys));
    assert!(cache.last_error().is_some_and(|e| e.contains("503")));
    source.serve(Some(&[TestKey::RsaA, TestKey::RsaB]));
    let fresh = cache.force_refresh().await.expect("recovers");
    assert_eq!(fresh.len(), 2);
    assert!(cache.last_error().is_none());
}

#[tokio::test(start_paused = true)]
async fn failure_without_cached_keys_is_an_error() {
    let source = FakeSource::new(&[]);
    source.serve(None);
    let cache = cache(&source);
    assert!(cache.refresh_after_miss(None).await.is_err());
    // Rate-limited: the next miss does not fetch, and there is still nothing to verify with.
    assert!(matches!(
        cache.refresh_after_miss(None).await,
        Err(FetchError::NotLoaded { last_error }) if last_error.contains("503")
    ));
    assert_eq!(source.fetches(), 1);
}
