-- The audit log: queued and sequenced records, interior Merkle nodes, the tree's right edge, and
-- signed checkpoints. Integers are SQLite's signed 64-bit; ids, indexes and microseconds stay far
-- below 2^63.

-- Every record, from the moment it is durably queued. `leaf_index` is NULL while queued and set,
-- once, by the sequencer in the transaction that also stores the nodes it completes.
CREATE TABLE audit_entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- EntryId; AUTOINCREMENT: never reused
    leaf_index INTEGER UNIQUE,
    record     BLOB NOT NULL,                      -- canonical JSON: exactly the Merkle leaf
    leaf_hash  BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    -- search columns, read from the record when it is queued
    username   TEXT,
    session    TEXT,
    verb       TEXT,
    resource   TEXT,
    namespace  TEXT,
    audit_id   TEXT,
    kind       TEXT,
    ts         INTEGER                             -- received, microseconds since the epoch
);
CREATE INDEX audit_entries_queue    ON audit_entries (id) WHERE leaf_index IS NULL;
CREATE INDEX audit_entries_username ON audit_entries (username, id);
CREATE INDEX audit_entries_session  ON audit_entries (session, id);
CREATE INDEX audit_entries_audit_id ON audit_entries (audit_id);
CREATE INDEX audit_entries_ts       ON audit_entries (ts);

-- Complete subtrees of 2^level leaves starting at leaf idx << level, level >= 1 (leaves are above):
-- every proof and tree head is O(log n) lookups here.
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- The one row: how many leaves the log has and the roots of its complete subtrees (the frontier),
-- largest first, 32 bytes each.
CREATE TABLE audit_tree (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    size     INTEGER NOT NULL,
    frontier BLOB NOT NULL
);
INSERT INTO audit_tree (id, size, frontier) VALUES (1, 0, x'');

-- Signed checkpoints (C2SP signed notes), in the order they were stored.
CREATE TABLE audit_checkpoints (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    size INTEGER NOT NULL,
    note TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size);
