//! A session recording as an auditor receives it (a bundle's `recordings/`, a shared volume): any
//! bytes, with any chunk records. `custos_recording::verify_bytes` / `verify_sealed` never panic and
//! accept only chunk lists that cover the bytes (exactly, or a prefix) with matching hashes;
//! `play_with` never panics; every event line that parses survives encode → parse unchanged (code and
//! data; time to the microsecond); a port-forward event's bytes come back only from its own format.
//!
//! Input: byte 0 = number of chunk records (0–7), then 4 bytes per chunk (offset u16, length u16,
//! big-endian), then the recording's bytes. A chunk's hash is the true one of its range when the range
//! is inside the file (so contiguous lists can pass), else a fixed wrong one.
#![no_main]

use std::time::Duration;

use custos_audit::record::StreamRef;
use custos_recording::{play_with, verify_bytes, verify_sealed, Event, Header, PlayOptions};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

const NAME: &str = "fuzz.cast";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8);
    if rest.len() < 4 * n {
        return;
    }
    let (specs, file) = rest.split_at(4 * n);
    let chunks: Vec<StreamRef> = specs
        .chunks(4)
        .enumerate()
        .map(|(seq, s)| {
            let offset = u64::from(u16::from_be_bytes([s[0], s[1]]));
            let bytes = u64::from(u16::from_be_bytes([s[2], s[3]]));
            let end = offset + bytes;
            let sha = if end <= file.len() as u64 {
                hex(&Sha256::digest(&file[offset as usize..end as usize]))
            } else {
                "00".repeat(32)
            };
            StreamRef {
                recording: NAME.into(),
                seq: Some(seq as u64),
                offset: Some(offset),
                bytes,
                sha256: Some(sha),
                ..StreamRef::default()
            }
        })
        .collect();
    let covered: u64 = chunks.iter().map(|c| c.bytes).sum();
    if verify_bytes(NAME, file, &chunks).is_ok() {
        assert_eq!(covered, file.len() as u64, "accepted without covering every byte");
    }
    let path = std::env::temp_dir().join(format!("custos-fuzz-{}.cast", std::process::id()));
    if std::fs::write(&path, file).is_ok() {
        if let Ok(tail) = verify_sealed(&path, &chunks) {
            assert_eq!(covered + tail, file.len() as u64, "sealed prefix plus tail is the file");
        }
        let options = PlayOptions {
            speed: f64::INFINITY,
            max_idle: Duration::from_secs(2),
        };
        let _ = play_with(&path, &options, &mut std::io::sink(), &mut |_| {});
        let _ = std::fs::remove_file(&path);
    }

    let Ok(text) = std::str::from_utf8(file) else {
        return;
    };
    let mut lines = text.lines();
    if let Some(first) = lines.next() {
        let _ = Header::parse(first);
    }
    for (i, line) in lines.enumerate() {
        let Ok(e) = Event::parse(line, i + 2) else {
            continue;
        };
        let mut out = Vec::new();
        e.encode(&mut out);
        let again = Event::parse(
            std::str::from_utf8(&out).expect("encode writes UTF-8").trim_end(),
            1,
        )
        .expect("an encoded event parses");
        assert_eq!((&again.code, &again.data), (&e.code, &e.data));
        assert_eq!(again.time.as_micros(), e.time.as_micros());
        if let Some((conn, bytes)) = e.forwarded_bytes() {
            let back = Event::forwarded(e.time, e.code == custos_recording::Code::ToPod, conn, &bytes);
            assert_eq!(back.forwarded_bytes(), Some((conn, bytes)));
        }
    }
});
