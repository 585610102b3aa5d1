//! The main story and the sequencer-under-load story.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use custos_audit::bundle::{self, BundleSpec, BundleTrust};
use custos_audit::merkle::{leaf_hash, Hash};
use custos_audit::Checkpoint;
use tokio::task::JoinSet;

use super::records::{count, user_of, verb_of};
use super::{sample_record, sample_time, test_key, Backend, TestLog};
use crate::proofs::{consistency_proof, inclusion_proof, root_at, BlockingSource};
use crate::{
    verify_store, Appender, AppenderConfig, CheckpointSink, EntryId, FileSink, LogStore,
    SearchQuery, Sequencer, SequencerConfig,
};

/// Appends sample records `range` from `writers` concurrent tasks; returns each record's entry id.
pub(crate) async fn append_concurrently(
    store: &Arc<dyn LogStore>,
    range: std::ops::Range<u64>,
    writers: u64,
) -> BTreeMap<u64, EntryId> {
    let appender = Appender::spawn(Arc::clone(store), AppenderConfig::default());
    let mut tasks = JoinSet::new();
    for w in 0..writers {
        let appender = appender.clone();
        let mine: Vec<u64> = range.clone().filter(|i| i % writers == w).collect();
        tasks.spawn(async move {
            let mut out = Vec::new();
            for i in mine {
                let id = appender.append(sample_record(i)).await.expect("append");
                out.push((i, id));
            }
            out
        });
    }
    let mut ids = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        ids.extend(done.expect("writer task"));
    }
    let distinct: BTreeSet<_> = ids.values().collect();
    assert_eq!(distinct.len(), ids.len(), "every append gets its own id");
    ids
}

fn sequencer(store: &Arc<dyn LogStore>, sink: Option<Arc<dyn CheckpointSink>>) -> Sequencer {
    Sequencer::new(
        Arc::clone(store),
        test_key(),
        SequencerConfig {
            interval: Duration::from_millis(20),
            checkpoint_interval: Duration::from_millis(50),
            election_interval: Duration::from_millis(50),
            max_batch: 64,
            sink,
        },
    )
}

async fn search(store: &dyn LogStore, q: SearchQuery) -> Vec<u64> {
    let limit = q.limit;
    let found = store.search(&q).await.expect("search");
    assert!(found.len() <= limit.max(1));
    found
        .iter()
        .map(|e| {
            let r: serde_json::Value = serde_json::from_slice(&e.record).expect("json");
            let id = r["auditID"].as_str().expect("audit id");
            id.trim_start_matches("a-").parse().expect("sample index")
        })
        .collect()
}

/// Appends, sequences, signs, proves, exports, searches, verifies, reopens.
pub async fn story(backend: &dyn Backend) {
    let key = test_key();
    let log = backend.open().await;
    let store = Arc::clone(&log.store);

    // An empty log verifies and has nothing signed.
    assert_eq!(store.tree().await.expect("tree").size, 0);
    assert!(store.checkpoints().await.expect("checkpoints").is_empty());
    let empty = verify_store(store.as_ref(), &key.verifier())
        .await
        .expect("empty log verifies");
    assert_eq!(empty.log.leaves, 0);

    // 400 records from 16 writers: all durable and queued, none in the log yet.
    let ids = append_concurrently(&store, 0..400, 16).await;
    assert_eq!(store.queued().await.expect("queued"), 400);
    let e = store.entry(ids[&7]).await.expect("entry").expect("entry 7");
    assert_eq!((e.record, e.leaf_index), (sample_record(7), None));

    // Sequencing puts every queued entry in the log exactly once, then signs it.
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = FileSink::new(dir.path().join("checkpoint"));
    let seq = sequencer(&store, Some(Arc::new(sink.clone())));
    assert_eq!(seq.integrate_all().await.expect("integrate"), 400);
    assert_eq!(store.queued().await.expect("queued"), 0);
    let first = seq.sign().await.expect("sign").expect("a checkpoint");
    assert!(
        seq.sign().await.expect("sign again").is_none(),
        "nothing new"
    );
    let cp400 = Checkpoint::open(&first.note, &key.verifier()).expect("opens");
    assert_eq!(cp400.size, 400);
    assert_eq!(
        std::fs::read_to_string(sink.path()).expect("copy"),
        first.note
    );
    let leaves = store.read(0, 400).await.expect("read");
    assert_eq!(leaves.len(), 400);
    let mut by_index = BTreeSet::new();
    for (n, leaf) in leaves.iter().enumerate() {
        assert_eq!(leaf.index, n as u64);
        assert_eq!(leaf.leaf_hash, leaf_hash(&leaf.record));
        assert!(
            by_index.insert(leaf.id),
            "entry {} sequenced twice",
            leaf.id
        );
    }
    assert_eq!(by_index, ids.values().copied().collect());

    // Inclusion proofs from the store verify against the signed root.
    for index in [0, 1, 199, 255, 256, 398, 399] {
        let proof = inclusion_proof(store.as_ref(), index, 400)
            .await
            .expect("proof");
        let leaf = &leaves[index as usize];
        proof
            .verify(&leaf_hash(&leaf.record), &cp400.root)
            .expect("inclusion proof verifies");
        let e = store.entry(leaf.id).await.expect("entry").expect("entry");
        assert_eq!(e.leaf_index, Some(index));
    }
    assert!(inclusion_proof(store.as_ref(), 400, 400).await.is_err());

    // More records, a second checkpoint, consistent with the first.
    append_concurrently(&store, 400..500, 4).await;
    seq.integrate_all().await.expect("integrate");
    let second = seq.sign().await.expect("sign").expect("second");
    let cp500 = Checkpoint::open(&second.note, &key.verifier()).expect("opens");
    assert_eq!(cp500.size, 500);
    consistency_proof(store.as_ref(), 400, 500)
        .await
        .expect("consistency proof")
        .verify(&cp400.root, &cp500.root)
        .expect("consistency verifies");
    assert_eq!(
        root_at(store.as_ref(), 400).await.expect("root"),
        cp400.root
    );
    assert_eq!(
        store.latest_checkpoint().await.expect("latest"),
        Some(second.clone())
    );
    assert_eq!(
        store.checkpoints().await.expect("all"),
        vec![first.clone(), second.clone()]
    );
    store
        .put_checkpoint(second.size, &second.note)
        .await
        .expect("idempotent");
    assert_eq!(store.checkpoints().await.expect("all").len(), 2);

    export_bundle(&store, &second.note, &cp500.root).await;
    search_story(store.as_ref()).await;

    let report = verify_store(store.as_ref(), &key.verifier())
        .await
        .expect("verifies");
    assert_eq!(
        (report.log.leaves, report.log.checkpoints, report.queued),
        (500, 2, 0)
    );
    assert!(
        report.nodes >= 490,
        "interior nodes checked: {}",
        report.nodes
    );

    // Reopening keeps everything, and the log goes on from its frontier.
    let log = backend.reopen(log).await;
    reopened(&log, &second, cp500.root).await;
}

/// After reopening: same tree, checkpoints and search; appends continue the log.
async fn reopened(log: &TestLog, latest: &crate::StoredCheckpoint, root: Hash) {
    let key = test_key();
    let store = Arc::clone(&log.store);
    let tree = store.tree().await.expect("tree");
    assert_eq!((tree.size, tree.root()), (500, root));
    assert_eq!(
        store.latest_checkpoint().await.expect("latest").as_ref(),
        Some(latest)
    );
    let alice = SearchQuery {
        user: Some("alice".into()),
        limit: 1000,
        ..SearchQuery::default()
    };
    assert_eq!(
        search(store.as_ref(), alice).await.len(),
        count(0..500, |i| user_of(i) == "alice")
    );
    append_concurrently(&store, 500..530, 3).await;
    let seq = sequencer(&store, None);
    assert_eq!(seq.integrate_all().await.expect("integrate"), 530);
    let third = seq.sign().await.expect("sign").expect("third");
    let cp530 = Checkpoint::open(&third.note, &key.verifier()).expect("opens");
    consistency_proof(store.as_ref(), 500, 530)
        .await
        .expect("proof")
        .verify(&root, &cp530.root)
        .expect("consistent across reopen");
    let report = verify_store(store.as_ref(), &key.verifier())
        .await
        .expect("verifies after reopen");
    assert_eq!((report.log.leaves, report.log.checkpoints), (530, 3));
    store.close().await;
}

/// Search by each column, by time, combined, paged, newest first.
async fn search_story(store: &dyn LogStore) {
    let all = |q: SearchQuery| SearchQuery { limit: 1000, ..q };
    let by_user = search(
        store,
        all(SearchQuery {
            user: Some("bob".into()),
            ..SearchQuery::default()
        }),
    )
    .await;
    assert_eq!(by_user.len(), count(0..500, |i| user_of(i) == "bob"));
    assert!(by_user.iter().all(|i| user_of(*i) == "bob"));

    let q = all(SearchQuery {
        session: Some("s-2".into()),
        verb: Some("delete".into()),
        resource: Some("pods".into()),
        ..SearchQuery::default()
    });
    let hits = search(store, q).await;
    let expected = count(0..500, |i| {
        i % 4 == 2 && verb_of(i) == "delete" && i % 2 == 0
    });
    assert_eq!(hits.len(), expected);
    assert!(expected > 0);

    let window = search(
        store,
        all(SearchQuery {
            since: Some(sample_time(100)),
            until: Some(sample_time(200)),
            ..SearchQuery::default()
        }),
    )
    .await;
    assert_eq!(
        window.iter().copied().collect::<BTreeSet<_>>(),
        (100..200).collect()
    );
    let one = search(
        store,
        SearchQuery {
            audit_id: Some("a-42".into()),
            kind: Some("request".into()),
            namespace: Some(format!("ns-{}", 42 % 7)),
            ..SearchQuery::default()
        },
    )
    .await;
    assert_eq!(one, vec![42]);

    // Paging: newest first, 7 at a time, until exhausted; every alice record exactly once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search(&SearchQuery {
                user: Some("alice".into()),
                newest_first: true,
                after,
                limit: 7,
                ..SearchQuery::default()
            })
            .await
            .expect("page");
        if page.is_empty() {
            break;
        }
        assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        after = page.last().map(|e| e.id);
        seen.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(seen.len(), count(0..500, |i| user_of(i) == "alice"));
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), seen.len());
}

/// Writes an evidence bundle through the blocking adapter and verifies it offline.
async fn export_bundle(store: &Arc<dyn LogStore>, note: &str, root: &Hash) {
    let key = test_key().verifier();
    let leaves = store.read(10, 20).await.expect("read");
    let source = BlockingSource::new(Arc::clone(store), tokio::runtime::Handle::current());
    let note = note.to_owned();
    let root = *root;
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("bundle");
        assert_eq!(
            custos_audit::merkle::root(&source, 500).expect("root"),
            root
        );
        let spec = BundleSpec {
            checkpoint: &note,
            key: &key,
            contiguous: false,
            consistency_from: &[400],
        };
        let records = leaves.into_iter().map(|l| (l.index, l.record));
        bundle::write(&out, &source, records, &spec).expect("bundle written");
        let trust = BundleTrust {
            key: Some(key.clone()),
            pin: None,
        };
        let report = bundle::verify_bundle(&out, &trust).expect("bundle verifies");
        assert_eq!(report.records, 10);
    })
    .await
    .expect("bundle task");
}

/// The spawned sequencer integrates and signs while 16 writers append; shutdown signs the rest.
pub async fn sequencing_under_load(backend: &dyn Backend) {
    let key = test_key();
    let log = backend.open().await;
    let store = Arc::clone(&log.store);
    let handle = sequencer(&store, None).spawn();
    let ids = append_concurrently(&store, 0..800, 16).await;
    handle.shutdown().await.expect("final round");
    let tree = store.tree().await.expect("tree");
    assert_eq!(tree.size, 800);
    let latest = store
        .latest_checkpoint()
        .await
        .expect("latest")
        .expect("signed on shutdown");
    assert_eq!(latest.size, 800);
    let report = verify_store(store.as_ref(), &key.verifier())
        .await
        .expect("verifies");
    assert_eq!(report.log.leaves, 800);
    assert!(report.log.checkpoints >= 1);
    let sequenced: BTreeSet<EntryId> = store
        .read(0, 800)
        .await
        .expect("read")
        .iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(sequenced, ids.values().copied().collect());
    store.close().await;
}
