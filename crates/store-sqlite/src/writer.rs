//! The writer thread: owns the write connection and runs every write transaction, one at a time, in
//! the order asked. Async callers send a command and await its answer; the thread blocks on SQLite so
//! no async worker ever does.

use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;

use custos_store::{
    decode_frontier, encode_frontier, integrate, EntryId, NewEntry, Sequenced, StoreError,
};
use rusqlite::{params, Connection, OptionalExtension as _, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::{sql_err, to_i64, to_u64};

/// Commands waiting for the writer, at most (the Appender batches in front of this).
const QUEUE: usize = 64;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Enqueue(Vec<NewEntry>, Reply<Vec<EntryId>>),
    Sequence(usize, Reply<Vec<Sequenced>>),
    PutCheckpoint(u64, String, Reply<()>),
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Identifies a file: a path that later names another file (or none) is not our database any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

fn file_id(path: &std::path::Path) -> std::io::Result<FileId> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(FileId { dev: 0, ino: 0 })
    }
}

struct Thread {
    conn: Connection,
    path: PathBuf,
    id: FileId,
}

impl Writer {
    pub(crate) fn spawn(conn: Connection, path: PathBuf) -> Result<Writer, StoreError> {
        let id = file_id(&path)
            .map_err(|e| StoreError::unavailable(format!("stat {}", path.display()), e))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let state = Thread { conn, path, id };
        let thread = std::thread::Builder::new()
            .name("custos-sqlite-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|e| StoreError::unavailable("starting the writer thread", e))?;
        Ok(Writer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let tx = self
            .tx
            .lock()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        tx.send(make(reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) async fn enqueue(&self, batch: Vec<NewEntry>) -> Result<Vec<EntryId>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.call(|r| Command::Enqueue(batch, r)).await
    }

    pub(crate) async fn sequence(&self, max: usize) -> Result<Vec<Sequenced>, StoreError> {
        self.call(|r| Command::Sequence(max, r)).await
    }

    pub(crate) async fn put_checkpoint(&self, size: u64, note: String) -> Result<(), StoreError> {
        self.call(|r| Command::PutCheckpoint(size, note, r)).await
    }

    /// Stops taking commands, lets the thread finish those already sent, and waits for it.
    pub(crate) async fn close(&self) {
        let tx = self.tx.lock().ok().and_then(|mut t| t.take());
        drop(tx);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Thread {
    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(command) = rx.blocking_recv() {
            match command {
                Command::Enqueue(batch, reply) => {
                    let _ = reply.send(self.checked(|t| t.enqueue(&batch)));
                }
                Command::Sequence(max, reply) => {
                    let _ = reply.send(self.checked(|t| t.sequence(max)));
                }
                Command::PutCheckpoint(size, note, reply) => {
                    let _ = reply.send(self.checked(|t| t.put_checkpoint(size, &note)));
                }
            }
        }
    }

    /// Runs a write only if the path still names the file we opened.
    fn checked<T>(
        &mut self,
        write: impl FnOnce(&mut Thread) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match file_id(&self.path) {
            Ok(id) if id == self.id => write(self),
            Ok(_) => Err(StoreError::unavailable(
                format!("{} was replaced by another file", self.path.display()),
                std::io::Error::other("database file replaced"),
            )),
            Err(e) => Err(StoreError::unavailable(
                format!(
                    "{} is gone (removed or moved); commits would not survive",
                    self.path.display()
                ),
                e,
            )),
        }
    }

    fn enqueue(&mut self, batch: &[NewEntry]) -> Result<Vec<EntryId>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err("starting enqueue"))?;
        let mut ids = Vec::with_capacity(batch.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO audit_entries (record, leaf_hash, username, session, verb, \
                     resource, namespace, audit_id, kind, ts) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(sql_err("preparing enqueue"))?;
            for entry in batch {
                let f = entry.fields();
                insert
                    .execute(params![
                        entry.record(),
                        &entry.leaf_hash().0[..],
                        f.user,
                        f.session,
                        f.verb,
                        f.resource,
                        f.namespace,
                        f.audit_id,
                        f.kind,
                        f.time.map(to_i64),
                    ])
                    .map_err(sql_err("inserting record"))?;
                ids.push(EntryId(to_u64(tx.last_insert_rowid())));
            }
        }
        // synchronous=FULL: the WAL is fsync'd before commit returns.
        tx.commit().map_err(sql_err("committing records"))?;
        Ok(ids)
    }

    fn sequence(&mut self, max: usize) -> Result<Vec<Sequenced>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err("starting sequencing"))?;
        let (size, frontier): (i64, Vec<u8>) = tx
            .query_row(
                "SELECT size, frontier FROM audit_tree WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(sql_err("reading the tree"))?;
        let frontier = decode_frontier(to_u64(size), &frontier)?;
        let queued = {
            let mut select = tx
                .prepare_cached(
                    "SELECT id, leaf_hash FROM audit_entries WHERE leaf_index IS NULL \
                     ORDER BY id LIMIT ?1",
                )
                .map_err(sql_err("preparing queue read"))?;
            let rows = select
                .query_map([to_i64(max as u64)], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(sql_err("reading the queue"))?;
            let mut queued = Vec::new();
            for row in rows {
                let (id, hash) = row.map_err(sql_err("reading the queue"))?;
                let hash = crate::hash(&hash)?;
                queued.push((EntryId(to_u64(id)), hash));
            }
            queued
        };
        if queued.is_empty() {
            return Ok(Vec::new());
        }
        let out = integrate(frontier, &queued);
        {
            let mut assign = tx
                .prepare_cached(
                    "UPDATE audit_entries SET leaf_index = ?1 WHERE id = ?2 AND leaf_index IS NULL",
                )
                .map_err(sql_err("preparing assignment"))?;
            for s in &out.sequenced {
                let changed = assign
                    .execute(params![to_i64(s.index), to_i64(s.id.0)])
                    .map_err(sql_err("assigning leaf index"))?;
                if changed != 1 {
                    return Err(StoreError::Corrupt(format!(
                        "entry {} was sequenced twice",
                        s.id
                    )));
                }
            }
            let mut node = tx
                .prepare_cached("INSERT INTO audit_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")
                .map_err(sql_err("preparing nodes"))?;
            for (id, hash) in &out.nodes {
                node.execute(params![id.level, to_i64(id.index), &hash.0[..]])
                    .map_err(sql_err("storing node"))?;
            }
        }
        tx.execute(
            "UPDATE audit_tree SET size = ?1, frontier = ?2 WHERE id = 1",
            params![to_i64(out.frontier.size()), encode_frontier(&out.frontier)],
        )
        .map_err(sql_err("storing the tree"))?;
        tx.commit().map_err(sql_err("committing sequencing"))?;
        Ok(out.sequenced)
    }

    fn put_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
        let exists = self
            .conn
            .query_row(
                "SELECT 1 FROM audit_checkpoints WHERE note = ?1",
                [note],
                |_| Ok(()),
            )
            .optional()
            .map_err(sql_err("reading checkpoints"))?;
        if exists.is_none() {
            self.conn
                .execute(
                    "INSERT INTO audit_checkpoints (size, note) VALUES (?1, ?2)",
                    params![to_i64(size), note],
                )
                .map_err(sql_err("storing checkpoint"))?;
        }
        Ok(())
    }
}
