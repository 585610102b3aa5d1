//! Published vectors from transparency-dev/merkle (`testonly/constants.go`, `rfc6962/rfc6962_test.go`,
//! `cmd/proofgen/main.go`; the same data as certificate-transparency's merkle tests), plus
//! cross-checks between the generator, the stored-node and the recomputing sources.

use super::*;

fn h(hex: &str) -> Hash {
    Hash::from_hex(hex).expect("vector hash")
}

fn hx(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// testonly.LeafInputs()
fn leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| hx(s))
    .collect()
}

/// testonly.RootHashes(): heads of trees of 0..=8 of those leaves.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// testonly.NodeHashes(): every complete node of the 8-leaf tree, by level.
const NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

fn log_of(n: usize) -> MemoryLog {
    let mut log = MemoryLog::new();
    for leaf in leaves().iter().take(n) {
        log.append(leaf);
    }
    log
}

#[test]
fn rfc6962_hasher_vectors() {
    // rfc6962_test.go: empty tree, empty leaf, a leaf, a node.
    assert_eq!(EMPTY_ROOT, h(ROOTS[0]));
    assert_eq!(Hash::sha256(b""), EMPTY_ROOT);
    assert_eq!(
        leaf_hash(b""),
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    assert_eq!(
        leaf_hash(b"L123456"),
        h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    );
    // HashChildren takes raw byte strings; "N123"/"N456" are not 32 bytes, so hash the preimage directly.
    let node = Hash::sha256(&[&[1u8][..], b"N123", b"N456"].concat());
    assert_eq!(
        node,
        h("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
    );
}

#[test]
fn roots_and_nodes_match_testonly() {
    for (n, want) in ROOTS.iter().enumerate() {
        let log = log_of(n);
        assert_eq!(log.root(), h(want), "root of {n} leaves (frontier)");
        assert_eq!(
            root(&log, n as u64).expect("stored"),
            h(want),
            "root of {n} leaves (stored nodes)"
        );
        let hashes: Vec<Hash> = leaves().iter().take(n).map(|l| leaf_hash(l)).collect();
        assert_eq!(
            root(hashes.as_slice(), n as u64).expect("slice"),
            h(want),
            "root of {n} (recomputed)"
        );
    }
    let log = log_of(8);
    for (level, row) in NODES.iter().enumerate() {
        for (index, want) in row.iter().enumerate() {
            assert_eq!(
                log.node_hash(level as u8, index as u64).expect("node"),
                h(want)
            );
        }
    }
    // A smaller tree inside the bigger stored one.
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(
            root(&log, n as u64).expect("prefix"),
            h(want),
            "prefix root {n}"
        );
    }
}

#[test]
fn proofgen_inclusion_vectors() {
    // cmd/proofgen: (leaf number 1-based, size, proof)
    let cases: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            3,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            2,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    let log = log_of(8);
    for (leaf, size, want) in cases {
        let proof = inclusion_proof(&log, leaf - 1, size).expect("proof");
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(proof.hashes, want, "inclusion {leaf}/{size}");
        let leaf_h = log.node_hash(0, leaf - 1).expect("leaf");
        proof
            .verify(&leaf_h, &h(ROOTS[size as usize]))
            .expect("verifies");
    }
}

#[test]
fn proofgen_consistency_vectors() {
    let cases: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    let log = log_of(8);
    for (old, new, want) in cases {
        let proof = consistency_proof(&log, old, new).expect("proof");
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(proof.hashes, want, "consistency {old}->{new}");
        proof
            .verify(&h(ROOTS[old as usize]), &h(ROOTS[new as usize]))
            .expect("verifies");
    }
}

#[test]
fn every_proof_up_to_70_leaves_verifies_and_lengths_agree() {
    let mut log = MemoryLog::new();
    let mut heads = vec![log.root()];
    for i in 0..70u16 {
        log.append(&i.to_be_bytes());
        heads.push(log.root());
    }
    let leaves: Vec<Hash> = (0..70)
        .map(|i| log.node_hash(0, i).expect("leaf"))
        .collect();
    for size in 1..=70u64 {
        assert_eq!(
            root(leaves.as_slice(), size).expect("recompute"),
            heads[size as usize]
        );
        for index in 0..size {
            let p = inclusion_proof(&log, index, size).expect("inclusion");
            assert_eq!(p.hashes.len(), inclusion_proof_len(index, size));
            assert_eq!(
                p,
                inclusion_proof(leaves.as_slice(), index, size).expect("recomputed")
            );
            p.verify(&leaves[index as usize], &heads[size as usize])
                .expect("inclusion verifies");
            let other = leaves[((index + 1) % size) as usize];
            if size > 1 {
                assert!(
                    p.verify(&other, &heads[size as usize]).is_err(),
                    "wrong leaf {index}/{size}"
                );
            }
        }
        for old in 1..=size {
            let p = consistency_proof(&log, old, size).expect("consistency");
            assert_eq!(p.hashes.len(), consistency_proof_len(old, size));
            p.verify(&heads[old as usize], &heads[size as usize])
                .expect("consistency verifies");
            if old < size {
                assert!(p
                    .verify(&heads[old as usize - 1], &heads[size as usize])
                    .is_err());
            }
        }
    }
}

#[test]
fn frontier_reports_completed_nodes_and_restores() {
    let log = log_of(7);
    let mut seen = Vec::new();
    let mut f = Frontier::new();
    for i in 0..7 {
        let leaf = log.node_hash(0, i).expect("leaf");
        f.push_with(leaf, |level, index, hash| seen.push((level, index, *hash)));
    }
    // 7 leaves complete 7 leaf nodes, 3 at level 1 and 1 at level 2.
    assert_eq!(seen.len(), 11);
    for (level, index, hash) in seen {
        assert_eq!(log.node_hash(level, index).expect("stored"), hash);
    }
    let restored = Frontier::from_parts(7, f.nodes().to_vec()).expect("parts");
    assert_eq!(restored.root(), h(ROOTS[7]));
    assert_eq!(Frontier::from_source(&log, 7).expect("source"), f);
    assert!(Frontier::from_parts(7, vec![]).is_err());
}

#[test]
fn bad_sizes_are_refused() {
    let log = log_of(4);
    assert!(matches!(
        inclusion_proof(&log, 4, 4),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        consistency_proof(&log, 0, 4),
        Err(ProofError::BadSizes { .. })
    ));
    assert!(matches!(
        consistency_proof(&log, 5, 4),
        Err(ProofError::BadSizes { .. })
    ));
    assert!(matches!(
        inclusion_proof(&log, 0, 5),
        Err(ProofError::Source(_))
    ));
}
