//! Sequencing as a pure function: given the stored frontier and the queued leaf hashes in the order
//! they will enter the log, which index each gets, which interior nodes they complete, and the new
//! frontier. Backends call it inside the transaction that writes its result, so the log, its nodes and
//! its frontier change together or not at all.

use custos_audit::merkle::{Frontier, Hash};

use crate::{EntryId, Sequenced, StoreError};

/// A complete subtree of the log: `2^level` leaves starting at leaf `index << level`. Level 0 is a
/// leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    /// The subtree's height.
    pub level: u8,
    /// Its position within its level.
    pub index: u64,
}

/// What sequencing a batch changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    /// Each entry's new leaf index, in order.
    pub sequenced: Vec<Sequenced>,
    /// The interior nodes (level ≥ 1) the batch completes; leaves themselves are stored with their
    /// entries.
    pub nodes: Vec<(NodeId, Hash)>,
    /// The frontier after the batch.
    pub frontier: Frontier,
}

/// Appends `queued` to the tree whose right edge is `frontier`.
pub fn integrate(mut frontier: Frontier, queued: &[(EntryId, Hash)]) -> Integration {
    let mut sequenced = Vec::with_capacity(queued.len());
    let mut nodes = Vec::with_capacity(queued.len());
    for (id, hash) in queued {
        sequenced.push(Sequenced {
            index: frontier.size(),
            id: *id,
            leaf_hash: *hash,
        });
        frontier.push_with(*hash, |level, index, hash| {
            if level > 0 {
                nodes.push((NodeId { level, index }, *hash));
            }
        });
    }
    Integration {
        sequenced,
        nodes,
        frontier,
    }
}

/// A frontier as stored: its node hashes concatenated, largest subtree first.
pub fn encode_frontier(frontier: &Frontier) -> Vec<u8> {
    frontier.nodes().iter().flat_map(|h| h.0).collect()
}

/// Reads a stored frontier of `size` leaves.
pub fn decode_frontier(size: u64, bytes: &[u8]) -> Result<Frontier, StoreError> {
    let chunks = bytes.chunks_exact(32);
    if !chunks.remainder().is_empty() {
        return Err(StoreError::Corrupt(format!(
            "stored frontier is {} bytes, not a multiple of 32",
            bytes.len()
        )));
    }
    let nodes = chunks
        .map(|c| Hash::from_slice(c).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    Frontier::from_parts(size, nodes)
        .map_err(|e| StoreError::Corrupt(format!("stored frontier: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_audit::merkle::{leaf_hash, MemoryLog};
    use custos_audit::HashSource as _;

    #[test]
    fn batches_give_the_same_tree_and_nodes_as_one_by_one() {
        let leaves: Vec<Hash> = (0..37u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut log = MemoryLog::new();
        for l in &leaves {
            log.append_hash(*l);
        }
        let mut frontier = Frontier::new();
        let mut all_nodes = Vec::new();
        for (n, chunk) in leaves.chunks(5).enumerate() {
            let queued: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| (EntryId((n * 5 + i) as u64 + 100), *h))
                .collect();
            let stored =
                decode_frontier(frontier.size(), &encode_frontier(&frontier)).expect("round trip");
            assert_eq!(stored, frontier);
            let out = integrate(stored, &queued);
            assert_eq!(out.sequenced[0].index, (n * 5) as u64);
            all_nodes.extend(out.nodes);
            frontier = out.frontier;
        }
        assert_eq!(frontier.root(), log.root());
        for (id, hash) in all_nodes {
            assert_eq!(log.node_hash(id.level, id.index).expect("node"), hash);
        }
    }

    #[test]
    fn refuses_a_damaged_frontier() {
        assert!(decode_frontier(3, &[0; 32]).is_err());
        assert!(decode_frontier(1, &[0; 31]).is_err());
        assert!(decode_frontier(0, &[]).is_ok());
    }
}
