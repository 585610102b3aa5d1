//! A raw HTTP/1.1 client for hostile-request tests: the request bytes go on the wire exactly as written.
//!
//! URL libraries normalise what these tests must send verbatim (`..` segments, `%2F`, `%00`, `//`, raw
//! non-ASCII bytes, 5000-byte paths, header sections larger than any server accepts), so this client
//! writes a byte string over a blocking rustls connection (or plain TCP for the ops port) and parses
//! whatever comes back: status line, headers, and a body framed by `Content-Length`, `chunked`, or the
//! end of the connection. A server may answer before it has read everything (hyper does for an
//! oversized header section, the gateway for an oversized body), so the writer stops as soon as the
//! server has spoken and the answer is still read.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// How long a read or write may block before the exchange fails.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes written between checks for an early answer from the server.
const WRITE_CHUNK: usize = 16 * 1024;
/// The largest response header section this client reads.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// One request, held as the exact bytes of its request line, header fields and body.
#[derive(Debug, Clone)]
pub struct RawRequest {
    method: String,
    target: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    chunked: bool,
}

impl RawRequest {
    /// A request with `method` and the request-target `target`, sent byte for byte.
    pub fn new(method: &str, target: impl Into<Vec<u8>>) -> Self {
        RawRequest {
            method: method.to_owned(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
        }
    }

    /// A `GET` of `target`.
    pub fn get(target: impl Into<Vec<u8>>) -> Self {
        Self::new("GET", target)
    }

    /// Adds a header field, value sent byte for byte (repeat a name to send it twice).
    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// Sets the body; `Content-Length` is added when the request is written.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Sets the body, sent with `Transfer-Encoding: chunked` in 64 KiB chunks (no length up front).
    pub fn chunked_body(mut self, body: &[u8]) -> Self {
        let mut encoded = Vec::with_capacity(body.len() + body.len() / 1024 + 16);
        for chunk in body.chunks(64 * 1024) {
            encoded.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            encoded.extend_from_slice(chunk);
            encoded.extend_from_slice(b"\r\n");
        }
        encoded.extend_from_slice(b"0\r\n\r\n");
        self.body = encoded;
        self.chunked = true;
        self
    }

    /// The value of the first header field named `name` (case-insensitive), as it will be sent.
    pub fn header_value(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The bytes on the wire for a server at `host` (`Host` first, `Connection: close` last).
    pub fn to_bytes(&self, host: &str) -> Vec<u8> {
        let mut out = self.head(host, false);
        out.extend_from_slice(&self.body);
        out
    }

    /// A short printable rendering for failure messages: long runs elided, odd bytes escaped, and
    /// credentials longer than 64 bytes (real tokens) replaced by their length.
    pub fn describe(&self) -> String {
        let mut text = escape(&self.head("GATEWAY", true), 600);
        if !self.body.is_empty() {
            text.push_str(&format!("<{} body bytes>", self.body.len()));
        }
        text
    }

    fn head(&self, host: &str, redact: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            match value.iter().position(|b| *b == b' ') {
                Some(space)
                    if redact && name.eq_ignore_ascii_case("authorization") && value.len() > 64 =>
                {
                    out.extend_from_slice(&value[..space]);
                    let len = value.len() - space - 1;
                    out.extend_from_slice(format!(" <{len}-byte credential>").as_bytes());
                }
                _ => out.extend_from_slice(value),
            }
            out.extend_from_slice(b"\r\n");
        }
        if self.chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        } else if !self.body.is_empty() {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out
    }
}

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub code: u16,
    /// Header fields in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// The fields of a Kubernetes `Status` body that clients act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeStatus {
    /// `Failure` or `Success`.
    pub status: String,
    /// The machine-readable reason, e.g. `Unauthorized`.
    pub reason: String,
    /// The HTTP code the body claims.
    pub code: u16,
    /// The human-readable message.
    pub message: String,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as lossy UTF-8, cut at `max` characters.
    pub fn body_text(&self, max: usize) -> String {
        escape(&self.body, max)
    }

    /// The body parsed as a Kubernetes `Status` (`kind: Status`, `apiVersion: v1`, JSON).
    pub fn status(&self) -> Result<KubeStatus> {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .with_context(|| format!("body is not JSON: {}", self.body_text(300)))?;
        ensure!(
            v["kind"] == "Status" && v["apiVersion"] == "v1",
            "body is not a v1 Status: {v}"
        );
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Ok(KubeStatus {
            status: text("status"),
            reason: text("reason"),
            code: v["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0),
            message: text("message"),
        })
    }
}

/// A client for one HTTPS server (`https://host:port`), trusting one CA; a new connection per request.
#[derive(Clone)]
pub struct RawClient {
    host: String,
    tls: Arc<ClientConfig>,
}

impl RawClient {
    /// A client for the origin of `url` (scheme https) that trusts the PEM certificates in `ca`.
    pub fn new(url: &str, ca: &Path) -> Result<Self> {
        let host = authority(url, "https://")?;
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.with_context(|| format!("parsing {}", ca.display()))?)?;
        }
        ensure!(!roots.is_empty(), "{} holds no certificate", ca.display());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(RawClient {
            host,
            tls: Arc::new(tls),
        })
    }

    /// Sends `req` over a fresh TLS connection and reads the answer.
    pub fn send(&self, req: &RawRequest) -> Result<RawResponse> {
        self.send_bytes(&req.to_bytes(&self.host))
    }

    /// Writes `bytes` verbatim over a fresh TLS connection (stopping early if the server answers
    /// first) and reads the answer.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<RawResponse> {
        let tcp = connect(&self.host)?;
        let name = ServerName::try_from(host_only(&self.host).to_owned())?;
        let conn = ClientConnection::new(self.tls.clone(), name)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .context("TLS handshake")?;
        }
        let write_error = write_until_answered(&mut tls, bytes).err();
        match read_response(BufReader::new(TolerantEof(tls))) {
            Ok(resp) => Ok(resp),
            Err(e) => match write_error {
                Some(w) => Err(e.context(format!("after a failed write ({w})"))),
                None => Err(e),
            },
        }
    }
}

/// `GET url` over plain HTTP (the gateway's ops listener).
pub fn http_get(url: &str) -> Result<RawResponse> {
    let host = authority(url, "http://")?;
    let path = url
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/");
    let mut tcp = connect(&host)?;
    tcp.write_all(&RawRequest::get(path).to_bytes(&host))?;
    read_response(BufReader::new(tcp))
}

fn connect(host: &str) -> Result<TcpStream> {
    let tcp = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// `host:port` of `url`, which must start with `scheme`.
fn authority(url: &str, scheme: &str) -> Result<String> {
    let rest = url
        .strip_prefix(scheme)
        .ok_or_else(|| anyhow!("{url:?} does not start with {scheme}"))?;
    let host = rest.split('/').next().unwrap_or_default();
    ensure!(host.contains(':'), "{url:?} has no port");
    Ok(host.to_owned())
}

fn host_only(authority: &str) -> &str {
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Writes `bytes` in chunks, stopping as soon as the server has sent application data or closed.
fn write_until_answered(tls: &mut Tls, bytes: &[u8]) -> io::Result<()> {
    for chunk in bytes.chunks(WRITE_CHUNK) {
        if server_has_spoken(tls)? {
            return Ok(());
        }
        tls.write_all(chunk)?;
    }
    tls.flush()
}

/// Pulls whatever TLS records have arrived, without blocking; true when they hold response bytes or
/// the server closed the connection.
fn server_has_spoken(tls: &mut Tls) -> io::Result<bool> {
    tls.sock.set_nonblocking(true)?;
    let got = tls.conn.read_tls(&mut tls.sock);
    tls.sock.set_nonblocking(false)?;
    match got {
        Ok(0) => Ok(true),
        Ok(_) => {
            let state = tls.conn.process_new_packets().map_err(io::Error::other)?;
            Ok(state.plaintext_bytes_to_read() > 0 || state.peer_has_closed())
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// A TLS stream whose close without `close_notify` (hyper after a refusal) reads as a clean end.
struct TolerantEof(Tls);

impl Read for TolerantEof {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

/// Reads one response: status line, header fields, then the body as its framing says.
fn read_response(mut r: impl BufRead) -> Result<RawResponse> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        r.by_ref()
            .take((MAX_RESPONSE_HEAD - before) as u64)
            .read_until(b'\n', &mut head)
            .context("reading the response head")?;
        if head.len() == before {
            bail!(
                "connection closed before a complete response head (got {:?})",
                escape(&head, 300)
            );
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            break;
        }
        ensure!(
            head.len() < MAX_RESPONSE_HEAD,
            "response head over {MAX_RESPONSE_HEAD} bytes"
        );
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines();
    let status_line = lines.next().unwrap_or_default();
    let code = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut resp = RawResponse {
        code,
        headers,
        body: Vec::new(),
    };
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        resp.body = read_chunked(&mut r)?;
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().context("content-length")?;
        resp.body = vec![0; len];
        r.read_exact(&mut resp.body).context("reading the body")?;
    } else if code != 204 && code != 304 {
        r.read_to_end(&mut resp.body).context("reading the body")?;
    }
    Ok(resp)
}

fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).context("reading a chunk size")?;
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16)
            .with_context(|| format!("bad chunk size line {line:?}"))?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .context("reading a chunk")?;
        let mut crlf = [0; 2];
        r.read_exact(&mut crlf).context("reading a chunk end")?;
    }
}

/// Printable rendering of `bytes`: escapes for non-printables, runs of one byte and long tails elided.
fn escape(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() && out.len() < max {
        let b = bytes[i];
        let run = bytes[i..].iter().take_while(|&&x| x == b).count();
        if run > 16 {
            out.push_str(&format!("<{run} x {:?}>", b as char));
            i += run;
            continue;
        }
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
        i += 1;
    }
    if i < bytes.len() {
        out.push_str(&format!("…<{} more bytes>", bytes.len() - i));
    }
    out
}
