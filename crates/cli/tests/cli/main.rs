//! The `custos` binary end to end: each test writes an SQLite audit log with the store's own appender
//! and sequencer, runs the built binary against it and reads its exit code, stdout and stderr.
//! `audit` covers `custos audit …` and `custos evidence …` (tail, search, verify with pins, tampered
//! logs and bundles); `recordings` covers recordings kept outside the data dir (`recordings.dir`,
//! `--recordings`) for verify, evidence export, `sessions play` and `custos serve`.

mod audit;
mod recordings;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use custos_audit::note::SignerKey;
use custos_audit::{MicroTime, Record};
use custos_store::{Appender, AppenderConfig, LogStore, Sequencer, SequencerConfig};
use custos_store_sqlite::SqliteStore;

/// 2025-06-15T00:00:00Z; [`at`] counts seconds from here.
const T0: u64 = 1_749_945_600_000_000;
/// An evidence window holding every record the fixtures write.
const FROM: &str = "2025-06-15T00:00:00Z";
const TO: &str = "2025-06-15T01:00:00Z";

/// `seconds` after [`T0`].
fn at(seconds: u64) -> MicroTime {
    MicroTime::from_unix_micros(T0 + seconds * 1_000_000).expect("time")
}

/// The built binary with `args`, on `data_dir`, and none of the caller's `CUSTOS_*` settings that
/// would point it at another store, key, config or recordings directory.
fn custos(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
    cmd.args(args)
        .env("CUSTOS_DATA_DIR", data_dir)
        .env_remove("CUSTOS_RECORDINGS")
        .env_remove("CUSTOS_STORE")
        .env_remove("CUSTOS_AUDIT_KEY_FILE")
        .env_remove("CUSTOS_CONFIG")
        .env("CUSTOS_LOG", "warn");
    cmd
}

/// The signing key in `<data_dir>/audit.key`, created there first if need be, as the gateway does.
fn signing_key(data_dir: &Path) -> SignerKey {
    let (key, _) =
        custos_audit::keys::load_or_generate(&data_dir.join("audit.key"), "custos").expect("key");
    key
}

/// Appends `records` to the SQLite log in `data_dir`; with a key, integrates and signs everything
/// queued, returning the new checkpoint's note.
fn append(data_dir: &Path, records: &[Record], sign_with: Option<&SignerKey>) -> Option<String> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store: Arc<dyn LogStore> =
            Arc::new(SqliteStore::open_in(data_dir).await.expect("store"));
        let appender = Appender::spawn(Arc::clone(&store), AppenderConfig::default());
        for r in records {
            appender.append_record(r).await.expect("append");
        }
        drop(appender);
        let note = match sign_with {
            Some(key) => {
                let seq =
                    Sequencer::new(Arc::clone(&store), key.clone(), SequencerConfig::default());
                seq.integrate_all().await.expect("integrate");
                seq.sign().await.expect("sign").map(|c| c.note)
            }
            None => None,
        };
        store.close().await;
        note
    })
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(cmd: &mut Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().expect("run custos");
        Run {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Exit code 1 with `needle` in stderr.
    fn fails_with(self, needle: &str) -> Run {
        assert_eq!(
            self.code,
            Some(1),
            "expected failure; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}
