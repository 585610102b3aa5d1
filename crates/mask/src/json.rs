//! Streaming masking of Kubernetes JSON responses with memory bounded by the largest single object,
//! never by the response: a list's `items` (and a `Table`'s `rows`) are cut out of the byte stream one
//! element at a time, parsed, masked and written; everything else of a top-level object (the list's
//! kind and metadata, a single object, one watch event) is parsed and masked as one unit. A watch
//! stream is a sequence of top-level values; each is emitted as soon as it is complete.
//!
//! The splitter only tracks strings and nesting; serde_json parses each unit, so anything malformed
//! is an error, never passed through.

use serde_json::Value;

use crate::detector::Detector;
use crate::kube::{Hint, Masking};
use crate::profile::Profile;
use crate::text::MaskCounts;

/// Default bound on one unit (an object, a list item, a list's frame): larger responses are refused.
pub const DEFAULT_MAX_OBJECT: usize = 64 * 1024 * 1024;

/// Why a JSON body could not be masked; the response must not reach the client unmasked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonMaskError {
    /// Not JSON (or not the JSON shape Kubernetes sends).
    #[error("response is not well-formed JSON: {0}")]
    Malformed(String),
    /// One object is larger than the bound.
    #[error("one object in the response is larger than {limit} bytes")]
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
    /// The body ended inside a value.
    #[error("response ended in the middle of a JSON value")]
    Truncated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between top-level values (whitespace only).
    Top,
    /// Inside a top-level value that is not an object (buffered whole).
    TopValue,
    /// In a top-level object, expecting a key or `}`.
    Key,
    /// Inside a key string.
    InKey,
    /// After a key, expecting `:`.
    Colon,
    /// After `:`, expecting a value.
    Value,
    /// Inside a member value (buffered into the frame).
    InValue,
    /// In a streamed array, expecting an element or `]`.
    Elem,
    /// Inside an element.
    InElem,
    /// After a streamed array, expecting `,` or `}`.
    AfterArray,
    /// An error happened; nothing more is accepted.
    Failed,
}

/// String and nesting state of one value being scanned.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    depth: u32,
    in_str: bool,
    esc: bool,
    /// The value began with `{`, `[` or `"` (ends when closed), not a bare scalar.
    delimited: bool,
}

impl Scan {
    /// Feeds one byte of the value. Returns `Err` on a stray closing bracket.
    fn step(&mut self, b: u8) -> Result<(), JsonMaskError> {
        if self.in_str {
            if self.esc {
                self.esc = false;
            } else if b == b'\\' {
                self.esc = true;
            } else if b == b'"' {
                self.in_str = false;
            }
            return Ok(());
        }
        match b {
            b'"' => self.in_str = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self
                    .depth
                    .checked_sub(1)
                    .ok_or_else(|| JsonMaskError::Malformed("unbalanced bracket".into()))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Feeds bytes until one that may end the value (`,`, `}` or `]` at depth 0 outside a string),
    /// which it does not consume. Returns how many bytes it consumed and whether it stopped at one.
    fn run(&mut self, bytes: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while i < bytes.len() {
            if self.in_str {
                if self.esc {
                    self.esc = false;
                    i += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    None => return (bytes.len(), false),
                    Some(j) => {
                        i += j;
                        if bytes[i] == b'"' {
                            self.in_str = false;
                        } else {
                            self.esc = true;
                        }
                        i += 1;
                    }
                }
                continue;
            }
            match bytes[i] {
                b'"' => self.in_str = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' | b',' if self.depth == 0 => return (i, true),
                b'}' | b']' => self.depth -= 1,
                _ => {}
            }
            i += 1;
        }
        (bytes.len(), false)
    }

    /// At depth 0 outside a string: the next `,`/`}`/`]` ends the value.
    fn at_rest(&self) -> bool {
        self.depth == 0 && !self.in_str
    }
}

/// Which array of the top-level object is being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Streamed {
    Items,
    Rows,
}

/// Masks a JSON response body chunk by chunk. What it writes is valid JSON with the same structure;
/// a unit is written once complete. Optionally keeps a copy for the audit record, masked with the
/// strict profile, up to a size bound.
pub struct JsonMasker<'d> {
    detector: &'d Detector,
    profile: Profile,
    strict: Option<Profile>,
    hint: Hint,
    max_object: usize,
    state: State,
    scan: Scan,
    /// Frame members of the current top-level object, re-assembled as `"k":v,"k":v`.
    members: Vec<u8>,
    member_count: usize,
    key: Vec<u8>,
    /// Where the current member's value starts in `members`.
    value_start: usize,
    /// A `,` was read and a member must follow.
    pending_member: bool,
    /// `{` of the current top-level object has been written.
    opened: bool,
    /// Something was written inside the current object since `{` (a `,` is due before more).
    wrote_inside: bool,
    /// Kind of the current top-level object's frame, once seen.
    frame_kind: Option<String>,
    streaming: Option<Streamed>,
    elem: Vec<u8>,
    elem_count: usize,
    pending_elem: bool,
    counts: MaskCounts,
    record: Option<Vec<u8>>,
    record_cap: usize,
    record_dropped: bool,
}

impl std::fmt::Debug for JsonMasker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonMasker")
            .field("state", &self.state)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

/// Output of one unit: the client's bytes, and the record's when they differ.
struct Unit {
    client: Vec<u8>,
    record: Option<Vec<u8>>,
}

impl<'d> JsonMasker<'d> {
    /// A masker for a response to a request described by `hint`, masking per `profile`; no unit may
    /// exceed `max_object` bytes.
    pub fn new(detector: &'d Detector, profile: Profile, hint: Hint, max_object: usize) -> Self {
        let strict = (!profile.is_strict()).then(Profile::strict);
        Self {
            detector,
            profile,
            strict,
            hint,
            max_object,
            state: State::Top,
            scan: Scan::default(),
            members: Vec::new(),
            member_count: 0,
            key: Vec::new(),
            value_start: 0,
            pending_member: false,
            opened: false,
            wrote_inside: false,
            frame_kind: None,
            streaming: None,
            elem: Vec::new(),
            elem_count: 0,
            pending_elem: false,
            counts: MaskCounts::default(),
            record: None,
            record_cap: 0,
            record_dropped: false,
        }
    }

    /// Also keeps the strictly masked output for the audit record, up to `cap` bytes (beyond that
    /// the copy is dropped: see [`JsonMasker::take_record`]).
    pub fn with_record(mut self, cap: usize) -> Self {
        self.record = Some(Vec::new());
        self.record_cap = cap;
        self
    }

    /// What was masked so far, by rule (for the client's copy).
    pub fn counts(&self) -> &MaskCounts {
        &self.counts
    }

    /// The strictly masked body for the record; `None` if it grew beyond the cap (or no copy was
    /// asked for).
    pub fn take_record(&mut self) -> Option<Vec<u8>> {
        if self.record_dropped {
            return None;
        }
        self.record.take()
    }

    /// Takes a chunk; appends masked output for every unit it completes.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), JsonMaskError> {
        let r = self.push_inner(chunk, out);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn push_inner(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), JsonMaskError> {
        let mut i = 0;
        while i < chunk.len() {
            // Inside a value or an element, runs of bytes that cannot end it are copied at once.
            let buf = match self.state {
                State::InValue => &mut self.members,
                State::InElem => &mut self.elem,
                _ => {
                    self.byte(chunk[i], out)?;
                    i += 1;
                    continue;
                }
            };
            let (n, stop) = self.scan.run(&chunk[i..]);
            buf.extend_from_slice(&chunk[i..i + n]);
            self.check_bound()?;
            i += n;
            if stop {
                self.byte(chunk[i], out)?;
                i += 1;
            }
        }
        Ok(())
    }

    fn check_bound(&self) -> Result<(), JsonMaskError> {
        if self.members.len() + self.elem.len() > self.max_object {
            return Err(JsonMaskError::TooLarge {
                limit: self.max_object,
            });
        }
        Ok(())
    }

    /// End of the body: the last top-level value must be complete.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), JsonMaskError> {
        match self.state {
            State::Top => Ok(()),
            State::TopValue if !self.scan.delimited => {
                let r = self.emit_top_value(out);
                self.state = if r.is_ok() { State::Top } else { State::Failed };
                r
            }
            State::Failed => Err(JsonMaskError::Malformed("masking failed earlier".into())),
            _ => {
                self.state = State::Failed;
                Err(JsonMaskError::Truncated)
            }
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) -> Result<(), JsonMaskError> {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        match self.state {
            State::Failed => Err(JsonMaskError::Malformed("masking failed earlier".into())),
            State::Top => {
                if ws {
                    out.push(b);
                    self.record_raw(&[b]);
                } else if b == b'{' {
                    self.start_object();
                } else {
                    self.elem.clear();
                    self.scan = Scan {
                        delimited: matches!(b, b'[' | b'"'),
                        ..Scan::default()
                    };
                    self.scan.step(b)?;
                    self.elem.push(b);
                    self.state = State::TopValue;
                }
                Ok(())
            }
            State::TopValue => {
                if !self.scan.delimited && ws {
                    self.emit_top_value(out)?;
                    out.push(b);
                    self.record_raw(&[b]);
                    self.state = State::Top;
                    return Ok(());
                }
                self.scan.step(b)?;
                self.elem.push(b);
                self.check_bound()?;
                if self.scan.delimited && self.scan.at_rest() {
                    self.emit_top_value(out)?;
                    self.state = State::Top;
                }
                Ok(())
            }
            State::Key => {
                if ws {
                } else if b == b'"' {
                    self.key.clear();
                    self.key.push(b);
                    self.scan = Scan::default();
                    self.state = State::InKey;
                } else if b == b'}' && !self.pending_member {
                    self.end_object(out)?;
                } else {
                    return Err(malformed(b, "a member name"));
                }
                Ok(())
            }
            State::InKey => {
                self.key.push(b);
                if self.key.len() > self.max_object {
                    return Err(JsonMaskError::TooLarge {
                        limit: self.max_object,
                    });
                }
                if self.scan.esc {
                    self.scan.esc = false;
                } else if b == b'\\' {
                    self.scan.esc = true;
                } else if b == b'"' {
                    self.state = State::Colon;
                }
                Ok(())
            }
            State::Colon => {
                if ws {
                } else if b == b':' {
                    self.state = State::Value;
                } else {
                    return Err(malformed(b, "':'"));
                }
                Ok(())
            }
            State::Value => {
                if ws {
                    return Ok(());
                }
                self.pending_member = false;
                if b == b'[' && self.streamable() {
                    return self.start_array(out);
                }
                if self.member_count > 0 {
                    self.members.push(b',');
                }
                self.members.extend_from_slice(&self.key);
                self.members.push(b':');
                self.value_start = self.members.len();
                self.member_count += 1;
                self.scan = Scan::default();
                self.state = State::InValue;
                self.value_byte(b, out)
            }
            State::InValue => self.value_byte(b, out),
            State::Elem => {
                if ws {
                } else if b == b']' && !self.pending_elem {
                    self.end_array(out);
                } else {
                    self.pending_elem = false;
                    self.elem.clear();
                    self.scan = Scan::default();
                    self.state = State::InElem;
                    return self.elem_byte(b, out);
                }
                Ok(())
            }
            State::InElem => self.elem_byte(b, out),
            State::AfterArray => {
                if ws {
                } else if b == b',' {
                    self.pending_member = true;
                    self.state = State::Key;
                } else if b == b'}' {
                    self.end_object(out)?;
                } else {
                    return Err(malformed(b, "',' or '}'"));
                }
                Ok(())
            }
        }
    }

    fn value_byte(&mut self, b: u8, out: &mut Vec<u8>) -> Result<(), JsonMaskError> {
        if self.scan.at_rest() && (b == b',' || b == b'}') {
            trim_end(&mut self.members);
            if self.key == b"\"kind\"" && self.frame_kind.is_none() {
                self.frame_kind = serde_json::from_slice(&self.members[self.value_start..]).ok();
            }
            if b == b',' {
                self.pending_member = true;
                self.state = State::Key;
            } else {
                self.end_object(out)?;
            }
            return Ok(());
        }
        self.scan.step(b)?;
        self.members.push(b);
        self.check_bound()
    }

    fn elem_byte(&mut self, b: u8, out: &mut Vec<u8>) -> Result<(), JsonMaskError> {
        if self.scan.at_rest() && (b == b',' || b == b']') {
            self.emit_elem(out)?;
            if b == b',' {
                self.pending_elem = true;
                self.state = State::Elem;
            } else {
                self.end_array(out);
            }
            return Ok(());
        }
        self.scan.step(b)?;
        self.elem.push(b);
        self.check_bound()
    }

    fn start_object(&mut self) {
        self.members.clear();
        self.member_count = 0;
        self.pending_member = false;
        self.opened = false;
        self.wrote_inside = false;
        self.frame_kind = None;
        self.streaming = None;
        self.state = State::Key;
    }

    /// `items` of a list and `rows` of a Table, once the frame's `kind` said so (the apiserver writes
    /// `kind` first; a body that does not is buffered whole, up to the bound).
    fn streamable(&self) -> bool {
        let kind = self.frame_kind.as_deref();
        match &self.key[..] {
            b"\"items\"" => kind.is_some_and(|k| k.ends_with("List")),
            b"\"rows\"" => kind == Some("Table"),
            _ => false,
        }
    }

    fn frame_value(&self) -> Result<Value, JsonMaskError> {
        let mut text = Vec::with_capacity(self.members.len() + 2);
        text.push(b'{');
        text.extend_from_slice(&self.members);
        text.push(b'}');
        serde_json::from_slice(&text).map_err(|e| JsonMaskError::Malformed(e.to_string()))
    }

    /// Writes the frame read so far (masked, without its closing brace) and the array's opening.
    fn start_array(&mut self, out: &mut Vec<u8>) -> Result<(), JsonMaskError> {
        let frame = self.frame_value()?;
        if self.frame_kind.is_none() {
            self.frame_kind = frame.get("kind").and_then(Value::as_str).map(str::to_owned);
        }
        let scan = self.needs_scan(&self.members);
        let unit = self.mask_unit(frame, scan, |m, v| m.members_except(v, &[]))?;
        self.write_members(unit, out);
        self.streaming = Some(if &self.key[..] == b"\"rows\"" {
            Streamed::Rows
        } else {
            Streamed::Items
        });
        let mut open = Vec::with_capacity(self.key.len() + 3);
        if self.wrote_inside {
            open.push(b',');
        }
        open.extend_from_slice(&self.key);
        open.extend_from_slice(b":[");
        self.write_both(&open, None, out);
        self.wrote_inside = true;
        self.members.clear();
        self.member_count = 0;
        self.elem_count = 0;
        self.pending_elem = false;
        self.state = State::Elem;
        Ok(())
    }

    /// Writes masked frame members inside the object: `{` first if not yet written, then the members
    /// (with a leading `,` if something came before them).
    fn write_members(&mut self, unit: Unit, out: &mut Vec<u8>) {
        let inner = |bytes: &[u8]| -> Vec<u8> {
            // A serialized object `{...}`: its members are what lies between the braces.
            bytes[1..bytes.len() - 1].to_vec()
        };
        let client = inner(&unit.client);
        let record = unit.record.as_deref().map(inner);
        let mut prefix = Vec::new();
        if !self.opened {
            prefix.push(b'{');
            self.opened = true;
        }
        if client.is_empty() {
            self.write_both(&prefix, None, out);
            return;
        }
        if self.wrote_inside {
            prefix.push(b',');
        }
        let mut c = prefix.clone();
        c.extend_from_slice(&client);
        let r = record.map(|r| {
            let mut p = prefix;
            p.extend_from_slice(&r);
            p
        });
        self.write_both(&c, r.as_deref(), out);
        self.wrote_inside = true;
    }

    fn end_array(&mut self, out: &mut Vec<u8>) {
        self.write_both(b"]", None, out);
        self.streaming = None;
        self.state = State::AfterArray;
    }

    fn end_object(&mut self, out: &mut Vec<u8>) -> Result<(), JsonMaskError> {
        let frame = self.frame_value()?;
        let scan = self.needs_scan(&self.members);
        if self.opened {
            if self.member_count > 0 {
                let unit = self.mask_unit(frame, scan, |m, v| m.members_except(v, &[]))?;
                self.write_members(unit, out);
            }
            self.write_both(b"}", None, out);
        } else {
            let hint = self.hint.clone();
            let unit = self.mask_unit(frame, scan, |m, v| m.document(v, &hint))?;
            self.write_both(&unit.client, unit.record.as_deref(), out);
        }
        self.members.clear();
        self.member_count = 0;
        self.state = State::Top;
        Ok(())
    }

    fn emit_elem(&mut self, out: &mut Vec<u8>) -> Result<(), JsonMaskError> {
        trim_end(&mut self.elem);
        let v: Value = serde_json::from_slice(&self.elem)
            .map_err(|e| JsonMaskError::Malformed(e.to_string()))?;
        let hint = match self.frame_kind.as_deref() {
            Some(k) if k.ends_with("List") => Hint {
                kind: Some(k.trim_end_matches("List").to_owned()),
                exempt: self.hint.exempt.clone(),
            },
            _ => self.hint.clone(),
        };
        let scan = self.needs_scan(&self.elem);
        let unit = match self.streaming {
            Some(Streamed::Rows) => self.mask_unit(v, scan, |m, v| m.row(v, &hint))?,
            _ => self.mask_unit(v, scan, |m, v| m.object(v, &hint))?,
        };
        if self.elem_count > 0 {
            self.write_both(b",", None, out);
        }
        self.write_both(&unit.client, unit.record.as_deref(), out);
        self.elem_count += 1;
        self.elem.clear();
        Ok(())
    }

    fn emit_top_value(&mut self, out: &mut Vec<u8>) -> Result<(), JsonMaskError> {
        let v: Value = serde_json::from_slice(&self.elem)
            .map_err(|e| JsonMaskError::Malformed(e.to_string()))?;
        let hint = self.hint.clone();
        let scan = self.needs_scan(&self.elem);
        let unit = self.mask_unit(v, scan, |m, v| m.document(v, &hint))?;
        self.write_both(&unit.client, unit.record.as_deref(), out);
        self.elem.clear();
        Ok(())
    }

    /// Masks one parsed unit for the client (and, if the profile is not strict and a record copy is
    /// kept, strictly for the record).
    fn mask_unit(
        &mut self,
        mut v: Value,
        scan: bool,
        f: impl Fn(&mut Masking<'_>, &mut Value),
    ) -> Result<Unit, JsonMaskError> {
        let record = match (&self.strict, &self.record) {
            (Some(strict), Some(_)) => {
                let mut copy = v.clone();
                let mut scratch = MaskCounts::default();
                f(
                    &mut Masking::new(self.detector, strict, &mut scratch, scan)
                        .exempting(&self.hint.exempt),
                    &mut copy,
                );
                Some(serialize(&copy)?)
            }
            _ => None,
        };
        f(
            &mut Masking::new(self.detector, &self.profile, &mut self.counts, scan)
                .exempting(&self.hint.exempt),
            &mut v,
        );
        Ok(Unit {
            client: serialize(&v)?,
            record,
        })
    }

    /// Whether the strings of a unit need the detectors: only if its raw text holds a candidate. A
    /// JSON `\u` escape could hide one (the apiserver writes them for `<`, `>`, `&` and controls),
    /// so a unit with any escape of that kind is always scanned string by string.
    fn needs_scan(&self, raw: &[u8]) -> bool {
        memchr::memmem::find(raw, b"\\u").is_some() || self.detector.has_candidate(raw)
    }

    fn write_both(&mut self, client: &[u8], record: Option<&[u8]>, out: &mut Vec<u8>) {
        out.extend_from_slice(client);
        self.record_raw(record.unwrap_or(client));
    }

    fn record_raw(&mut self, bytes: &[u8]) {
        if let Some(r) = &mut self.record {
            if r.len() + bytes.len() > self.record_cap {
                self.record = None;
                self.record_dropped = true;
            } else {
                r.extend_from_slice(bytes);
            }
        }
    }
}

fn serialize(v: &Value) -> Result<Vec<u8>, JsonMaskError> {
    serde_json::to_vec(v).map_err(|e| JsonMaskError::Malformed(e.to_string()))
}

fn trim_end(buf: &mut Vec<u8>) {
    while buf
        .last()
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        buf.pop();
    }
}

fn malformed(b: u8, expected: &str) -> JsonMaskError {
    JsonMaskError::Malformed(format!(
        "unexpected {:?} where {expected} was expected",
        b as char
    ))
}
