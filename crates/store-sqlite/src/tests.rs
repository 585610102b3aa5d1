use super::*;

#[tokio::test]
async fn creates_a_private_file_in_a_private_dir_with_wal_and_full_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("custos-data");
    let store = SqliteStore::open_in(&data).await.expect("open");
    assert_eq!(store.path(), data.join(DEFAULT_FILE));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(store.path()), 0o600);
    }
    let conn = Connection::open(store.path()).expect("conn");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal");
    assert_eq!(mode, "wal");
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 1);
    store.close().await;
    assert!(matches!(store.tree().await, Err(StoreError::Closed)));
    assert!(matches!(
        store.put_checkpoint(1, "x\n").await,
        Err(StoreError::Closed)
    ));
}

#[tokio::test]
async fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.db");
    SqliteStore::open(&path).await.expect("open").close().await;
    Connection::open(&path)
        .expect("conn")
        .pragma_update(None, "user_version", 99)
        .expect("bump");
    let err = SqliteStore::open(&path).await.expect_err("newer schema");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test]
async fn refuses_a_directory_it_cannot_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plain-file");
    fs::write(&file, b"").expect("file");
    let err = SqliteStore::open(file.join("audit.db"))
        .await
        .expect_err("a file is not a directory");
    assert!(err.is_transient(), "{err}");
}
