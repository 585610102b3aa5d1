-- The audit log: queued and sequenced records, interior Merkle nodes, the tree's right edge, and
-- signed checkpoints. Several gateway replicas insert into audit_entries; one sequencer at a time
-- (pg_try_advisory_lock) assigns leaf indexes. Integers are bigint; ids, indexes and microseconds stay
-- far below 2^63.

-- Every record, from the moment it is durably queued. `leaf_index` is NULL while queued and set,
-- once, by the sequencer in the transaction that also stores the nodes it completes and the new tree
-- row (which it locks first, so even two sequencers at once could not give an entry two indexes).
CREATE TABLE audit_entries (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- EntryId
    leaf_index bigint UNIQUE,
    record     bytea NOT NULL,                                    -- canonical JSON: the Merkle leaf
    leaf_hash  bytea NOT NULL CHECK (length(leaf_hash) = 32),
    -- search columns, read from the record when it is queued
    username   text,
    session    text,
    verb       text,
    resource   text,
    namespace  text,
    audit_id   text,
    kind       text,
    ts         bigint                                             -- received, µs since the epoch
);
CREATE INDEX audit_entries_queue    ON audit_entries (id) WHERE leaf_index IS NULL;
CREATE INDEX audit_entries_username ON audit_entries (username, id);
CREATE INDEX audit_entries_session  ON audit_entries (session, id);
CREATE INDEX audit_entries_audit_id ON audit_entries (audit_id);
CREATE INDEX audit_entries_ts       ON audit_entries (ts);

-- Complete subtrees of 2^level leaves starting at leaf idx << level, level >= 1 (leaves are above):
-- every proof and tree head is O(log n) lookups here.
CREATE TABLE audit_nodes (
    level smallint NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   bigint NOT NULL,
    hash  bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- The one row: how many leaves the log has and the roots of its complete subtrees (the frontier),
-- largest first, 32 bytes each. Sequencing locks it (FOR UPDATE).
CREATE TABLE audit_tree (
    id       smallint PRIMARY KEY CHECK (id = 1),
    size     bigint NOT NULL,
    frontier bytea NOT NULL
);
INSERT INTO audit_tree (id, size, frontier) VALUES (1, 0, ''::bytea);

-- Signed checkpoints (C2SP signed notes), in the order they were stored.
CREATE TABLE audit_checkpoints (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size bigint NOT NULL,
    note text NOT NULL UNIQUE
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size);
