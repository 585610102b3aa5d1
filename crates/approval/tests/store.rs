//! The same behaviour from both stores: SQLite in a temp dir, PostgreSQL when
//! `CUSTOS_TEST_POSTGRES_URL` is set (scripts/test sets it; without it the PostgreSQL tests fail with
//! the reason rather than pass silently).

use std::time::Duration;

use custos_approval::{
    new_id, ApprovalStore, Grant, GrantScope, Operation, Person, PgApprovals, Review, Revocation,
    Session, SqliteApprovals, State, Verdict,
};
use custos_audit::record::MicroTime;
use tokio::time::Instant;

fn now() -> MicroTime {
    MicroTime::from_system_time(std::time::SystemTime::now()).expect("test step")
}

fn later(s: u64) -> MicroTime {
    MicroTime::from_unix_micros(now().unix_micros() + s * 1_000_000).expect("test step")
}

fn review() -> Review {
    Review {
        id: new_id("rv-"),
        version: 0,
        created: now(),
        expires: later(600),
        audit_id: "audit-1".into(),
        requester: Person {
            username: "agent@x".into(),
            groups: vec!["agents".into()],
        },
        session: None,
        operation: Operation {
            verb: "delete".into(),
            api_group: "apps".into(),
            resource: "deployments".into(),
            namespace: "prod-eu".into(),
            name: "payments".into(),
            ..Operation::default()
        },
        body: None,
        preview: None,
        diff: None,
        policy_ids: vec!["p".into()],
        reason: "deletes in production need review".into(),
        approvers: vec!["sre-oncall".into()],
        threshold: 1,
        grant_seconds: Some(60),
        grant_scope: GrantScope::Operation,
        state: State::Pending,
        votes: vec![],
        grant_id: None,
        released: false,
    }
}

async fn behaves(store: &dyn ApprovalStore) {
    let mut r = review();
    store.insert_review(&r).await.expect("test step");
    let got = store
        .review(&r.id)
        .await
        .expect("test step")
        .expect("test step");
    assert_eq!(got, r);
    assert!(store
        .review("rv-missing")
        .await
        .expect("test step")
        .is_none());
    assert!(store
        .reviews(Some(State::Pending), 100)
        .await
        .expect("test step")
        .iter()
        .any(|x| x.id == r.id));

    // Compare-and-swap: the second writer from the same read loses.
    let oncall = Person {
        username: "oncall@x".into(),
        groups: vec!["sre-oncall".into()],
    };
    let stale = got.clone();
    r.vote(&oncall, Verdict::Approve, "INC-7 approved", now())
        .expect("test step");
    assert!(store.update_review(&r).await.expect("test step"));
    assert!(
        !store.update_review(&stale).await.expect("test step"),
        "stale write must lose"
    );
    let stored = store
        .review(&r.id)
        .await
        .expect("test step")
        .expect("test step");
    assert_eq!(stored.state, State::Approved);
    assert_eq!(stored.version, 1);

    // Grants: active filter, revoke by CAS.
    let g: Grant = stored.grant(new_id("gr-"), now()).expect("test step");
    store.insert_grant(&g).await.expect("test step");
    let active = store
        .grants(Some("agent@x"), Some(now()))
        .await
        .expect("test step");
    assert!(active.iter().any(|x| x.id == g.id));
    let mut revoked = g.clone();
    revoked.revoked = Some(Revocation {
        by: oncall.clone(),
        at: now(),
        reason: "done".into(),
    });
    assert!(store.update_grant(&revoked).await.expect("test step"));
    assert!(
        !store.update_grant(&revoked).await.expect("test step"),
        "stale"
    );
    let active = store
        .grants(Some("agent@x"), Some(now()))
        .await
        .expect("test step");
    assert!(
        !active.iter().any(|x| x.id == g.id),
        "a revoked grant is not active"
    );
    assert!(store
        .grant(&g.id)
        .await
        .expect("test step")
        .expect("test step")
        .revoked
        .is_some());

    // Sessions by token digest.
    let s = Session {
        id: new_id("ss-"),
        token_sha256: new_id("").repeat(5),
        user: oncall.clone(),
        uid: None,
        intent: "rotate certificates".into(),
        ticket: Some("INC-9".into()),
        created: now(),
        expires: later(3600),
        issuer: None,
    };
    store.insert_session(&s).await.expect("test step");
    assert_eq!(
        store
            .session_by_token(&s.token_sha256)
            .await
            .expect("test step"),
        Some(s.clone())
    );
    assert!(store
        .session_by_token("00")
        .await
        .expect("test step")
        .is_none());
}

#[tokio::test]
async fn sqlite_store_keeps_reviews_grants_and_sessions() {
    let dir = tempfile::tempdir().expect("test step");
    let store = SqliteApprovals::open_in(dir.path())
        .await
        .expect("test step");
    behaves(&store).await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("approvals.db"))
        .expect("test step")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "approvals.db must be private");
}

#[tokio::test]
async fn sqlite_waiters_wake_on_a_change() {
    let dir = tempfile::tempdir().expect("test step");
    let store = SqliteApprovals::open_in(dir.path())
        .await
        .expect("test step");
    let r = review();
    store.insert_review(&r).await.expect("test step");
    let waiter = {
        let store = store.clone();
        let id = r.id.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            store.changed(&id, start + Duration::from_secs(30)).await;
            start.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut next = r.clone();
    next.state = State::Denied;
    assert!(store.update_review(&next).await.expect("test step"));
    let waited = waiter.await.expect("test step");
    assert!(
        waited < Duration::from_millis(900),
        "woken by the change, not the 1 s re-read: {waited:?}"
    );
}

fn pg_url() -> String {
    std::env::var("CUSTOS_TEST_POSTGRES_URL")
        .expect("CUSTOS_TEST_POSTGRES_URL is not set: run crates/store-postgres/scripts/test-db (scripts/test does)")
}

fn schema() -> String {
    new_id("appr_").replace('-', "_")
}

#[tokio::test]
async fn postgres_store_keeps_reviews_grants_and_sessions() {
    let store = PgApprovals::connect(&pg_url(), Some(&schema()))
        .await
        .expect("test step");
    behaves(&store).await;
}

#[tokio::test]
async fn a_change_on_one_replica_wakes_a_waiter_on_another() {
    let schema = schema();
    let a = PgApprovals::connect(&pg_url(), Some(&schema))
        .await
        .expect("test step");
    let b = std::sync::Arc::new(
        PgApprovals::connect(&pg_url(), Some(&schema))
            .await
            .expect("test step"),
    );
    let r = review();
    a.insert_review(&r).await.expect("test step");
    let waiter = {
        let b = b.clone();
        let id = r.id.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            b.changed(&id, start + Duration::from_secs(30)).await;
            start.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut next = r.clone();
    next.state = State::Denied;
    assert!(a.update_review(&next).await.expect("test step"));
    let waited = waiter.await.expect("test step");
    assert!(
        waited < Duration::from_millis(900),
        "woken by NOTIFY, not the 1 s re-read: {waited:?}"
    );
    assert_eq!(
        b.review(&r.id)
            .await
            .expect("test step")
            .expect("test step")
            .state,
        State::Denied
    );
}

#[tokio::test]
async fn a_hostile_schema_name_is_refused() {
    let e = PgApprovals::connect(&pg_url(), Some("x; DROP TABLE y"))
        .await
        .expect_err("the test expects an error");
    assert!(e.to_string().contains("schema"), "{e}");
}
