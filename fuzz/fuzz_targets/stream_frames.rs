//! `custos_stream`'s frame parsers and masking tap on any bytes, in any chunking. The first byte picks
//! the mode, the second where the input is cut in two:
//! `0` SPDY (client then server direction of one connection), `1` WebSocket server frames, `2`
//! WebSocket client frames (masked), `3` the SPDY masking tap, `4` the WebSocket masking tap, `5` one
//! SPDY header block inflated.
//! Checks beyond "no panic": the cut never changes the events (data pieces merged) nor whether parsing
//! fails; the taps write only whole frames, and every channel gets out exactly as many bytes as came in.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::BytesMut;
use custos_mask::Detector;
use custos_stream::spdy::headers::{HeaderDeflater, HeaderInflater};
use custos_stream::spdy::{Sender, SpdyReader, Streams};
use custos_stream::ws::frame::Role;
use custos_stream::ws::WsReader;
use custos_stream::{Event, MaskingTap, StreamError, UpstreamObserver};
use libfuzzer_sys::fuzz_target;

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector::builtin().expect("builtin rules"))
}

/// Events as owned strings, data pieces of one channel merged (chunking may split them).
#[derive(Default, Debug, PartialEq)]
struct Seen {
    events: Vec<String>,
    data: Vec<u8>,
    data_key: Option<(u32, bool)>,
    bytes: BTreeMap<u32, u64>,
}

impl Seen {
    fn push(&mut self, e: Event<'_>) -> Result<(), StreamError> {
        match e {
            Event::Data {
                stream,
                bytes,
                fin,
                channel,
            } => {
                *self.bytes.entry(stream).or_default() += bytes.len() as u64;
                if self.data_key.is_some_and(|(s, f)| s != stream || f) {
                    self.end_data();
                }
                self.data_key = Some((stream, fin));
                self.data.extend_from_slice(bytes);
                let _ = channel;
            }
            other => {
                self.end_data();
                self.events.push(format!("{other:?}"));
            }
        }
        Ok(())
    }

    fn end_data(&mut self) {
        if let Some((s, f)) = self.data_key.take() {
            self.events.push(format!("data {s} {f} {:?}", self.data));
            self.data.clear();
        }
    }

    fn done(mut self) -> Self {
        self.end_data();
        self
    }
}

type Feed<'a> = dyn FnMut(&[u8], &mut Seen) -> Result<(), StreamError> + 'a;

/// Parses `chunks` with a fresh reader from `make`; the events and whether it failed.
fn parse(make: &dyn Fn() -> Box<Feed<'static>>, chunks: &[&[u8]]) -> (Seen, bool) {
    let mut feed = make();
    let mut seen = Seen::default();
    let mut failed = false;
    for c in chunks {
        if feed(c, &mut seen).is_err() {
            failed = true;
            break;
        }
    }
    (seen.done(), failed)
}

fn same_whole_or_cut(make: &dyn Fn() -> Box<Feed<'static>>, data: &[u8], cut: usize) {
    let (whole, whole_failed) = parse(make, &[data]);
    let (a, b) = data.split_at(cut);
    let (split, split_failed) = parse(make, &[a, b]);
    assert_eq!(
        whole_failed, split_failed,
        "the cut changed whether parsing fails"
    );
    if !whole_failed {
        assert_eq!(whole, split, "the cut changed the events");
    }
}

/// An exec's client side (error, stdin, stdout, stderr, resize) registered in a fresh table.
fn exec_streams() -> Streams {
    let streams = Streams::new();
    let mut z = HeaderDeflater::new().expect("deflater");
    let mut wire = Vec::new();
    for (id, t) in [
        (1u32, "error"),
        (3, "stdin"),
        (5, "stdout"),
        (7, "stderr"),
        (9, "resize"),
    ] {
        let block = z.deflate(&[("streamtype", t)]).expect("deflate");
        let len = 10 + block.len();
        wire.extend_from_slice(&[0x80, 3, 0, 1, 0]);
        wire.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        wire.extend_from_slice(&id.to_be_bytes());
        wire.extend_from_slice(&[0; 6]);
        wire.extend_from_slice(&block);
    }
    UpstreamObserver::spdy(streams.clone())
        .on_chunk(&wire)
        .expect("client side");
    streams
}

/// Runs a masking tap over the input (cut in two, then idle-flushed) and checks its output: whole
/// frames only, and per channel as many bytes out as in.
fn tap(spdy: bool, data: &[u8], cut: usize) {
    let make = |s: Option<Streams>| match s {
        Some(s) => MaskingTap::spdy(detector(), s),
        None => MaskingTap::websocket(detector()),
    };
    let mut t = make(spdy.then(exec_streams));
    let mut out = BytesMut::new();
    let (a, b) = data.split_at(cut);
    let mut failed = false;
    for c in [a, b] {
        if t.on_chunk(c, &mut out).is_err() {
            failed = true;
            break;
        }
    }
    if failed {
        t.farewell("fuzz", &mut out);
    } else {
        t.on_idle(&mut out);
        assert!(!t.holds(), "an idle flush leaves nothing held");
    }
    // What the tap wrote parses completely, ending on a frame boundary.
    let mut reparsed = Seen::default();
    let at_boundary = if spdy {
        let mut r = SpdyReader::new(Sender::Server, exec_streams());
        r.feed(&out, &mut |e| reparsed.push(e))
            .expect("tap output parses");
        r.at_boundary()
    } else {
        let mut r = WsReader::new(Role::Server);
        r.feed(&out, &mut |e| reparsed.push(e))
            .expect("tap output parses");
        r.at_boundary()
    };
    assert!(at_boundary, "tap output ends inside a frame");
    if failed {
        return;
    }
    // The input's data bytes per channel, as the reader saw them.
    let mut input = Seen::default();
    if spdy {
        let mut r = SpdyReader::new(Sender::Server, exec_streams());
        r.feed(data, &mut |e| input.push(e))
            .expect("parsed once already");
    } else {
        let mut r = WsReader::new(Role::Server);
        r.feed(data, &mut |e| input.push(e))
            .expect("parsed once already");
    }
    input.bytes.retain(|_, n| *n > 0);
    reparsed.bytes.retain(|_, n| *n > 0);
    assert_eq!(input.bytes, reparsed.bytes, "bytes per channel changed");
}

fuzz_target!(|data: &[u8]| {
    let [mode, cut, rest @ ..] = data else {
        return;
    };
    let cut = usize::from(*cut).min(rest.len());
    match mode % 6 {
        0 => {
            same_whole_or_cut(
                &|| {
                    let mut r = SpdyReader::new(Sender::Client, Streams::new());
                    Box::new(move |c: &[u8], seen: &mut Seen| r.feed(c, &mut |e| seen.push(e)))
                },
                rest,
                cut,
            );
            // The two directions of one connection share a stream table: the client's half first.
            let (client, server) = rest.split_at(cut);
            let streams = Streams::new();
            let mut seen = Seen::default();
            let _ = SpdyReader::new(Sender::Client, streams.clone())
                .feed(client, &mut |e| seen.push(e));
            let _ = SpdyReader::new(Sender::Server, streams).feed(server, &mut |e| seen.push(e));
        }
        1 | 2 => {
            let role = if mode % 6 == 1 {
                Role::Server
            } else {
                Role::Client
            };
            same_whole_or_cut(
                &|| {
                    let mut r = WsReader::new(role);
                    Box::new(move |c: &[u8], seen: &mut Seen| r.feed(c, &mut |e| seen.push(e)))
                },
                rest,
                cut,
            );
        }
        3 => tap(true, rest, cut),
        4 => tap(false, rest, cut),
        _ => {
            let _ = HeaderInflater::new().inflate(rest);
        }
    }
});
