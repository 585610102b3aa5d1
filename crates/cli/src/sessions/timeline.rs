//! Sessions as an examiner reads them, built from records alone (no I/O): which session a record
//! belongs to ([`SessionKey`]), one line per session ([`Summary`], folded by [`Aggregator`]), and a
//! session's timeline ([`Step`]s: the records of one request grouped by audit ID, in log order; shown
//! by `super::view`).
//!
//! A session is a Custos agent session (`custos.session.id`), or, for requests without one, the
//! credential they came with: one OIDC token (or client certificate, or static token), keyed by
//! `custos.authn.tokenId`. Records that carry neither (approvals, refusals, stream chunks) join the
//! session of the request whose audit ID they share.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use custos_audit::record::{Outcome, Record, RecordKind};
use custos_audit::MicroTime;
use serde::Serialize;

/// A record read from the log, with its place there.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The store's entry id (log order, also for records not yet sequenced).
    pub id: u64,
    /// Its leaf index, once sequenced.
    pub leaf: Option<u64>,
    /// The record.
    pub record: Record,
}

/// Which session a record belongs to by its own fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionKey {
    /// A Custos agent session (`ss-…`).
    Custos(String),
    /// All requests of one credential without a Custos session.
    Token {
        /// `oidc`, `client-cert`, `static-token`.
        method: String,
        /// `custos.authn.tokenId`.
        token_id: String,
    },
}

impl SessionKey {
    /// The session a record names: its Custos session, else (requests and responses only) its
    /// credential's token id.
    pub fn of(record: &Record) -> Option<SessionKey> {
        if let Some(s) = &record.custos.session {
            return Some(SessionKey::Custos(s.id.clone()));
        }
        if !matches!(
            record.custos.record_kind,
            RecordKind::Request | RecordKind::Response
        ) {
            return None;
        }
        let authn = record.custos.authn.as_ref()?;
        let token_id = authn.token_id.clone().filter(|t| !t.is_empty())?;
        // A request made with a session token carries the session's id as its token id, also on
        // records written before the session was known (refusals).
        if token_id.starts_with("ss-") {
            return Some(SessionKey::Custos(token_id));
        }
        Some(SessionKey::Token {
            method: authn.method.clone(),
            token_id,
        })
    }

    /// Parses what [`SessionKey::id`] prints: `ss-…`, or `<method>:<token id>`.
    pub fn parse(id: &str) -> Result<SessionKey, String> {
        let id = id.trim();
        if id.starts_with("ss-") {
            return Ok(SessionKey::Custos(id.to_owned()));
        }
        match id.split_once(':') {
            Some((method, token)) if !method.is_empty() && !token.is_empty() => {
                Ok(SessionKey::Token {
                    method: method.to_owned(),
                    token_id: token.to_owned(),
                })
            }
            _ => Err(format!(
                "{id:?} is not a session id: a Custos session (ss-…) or a credential's \
                 <method>:<token id> as `custos sessions list` prints it"
            )),
        }
    }

    /// The id `sessions list` prints and `sessions show` takes.
    pub fn id(&self) -> String {
        match self {
            SessionKey::Custos(id) => id.clone(),
            SessionKey::Token { method, token_id } => format!("{method}:{token_id}"),
        }
    }

    /// `custos` for agent sessions, else the credential's method.
    pub fn kind(&self) -> &str {
        match self {
            SessionKey::Custos(_) => "custos",
            SessionKey::Token { method, .. } => method,
        }
    }
}

/// One session in `sessions list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Session id (see [`SessionKey::id`]).
    pub id: String,
    /// `custos`, `oidc`, `client-cert`, `static-token`.
    pub kind: String,
    /// Who (the first user seen).
    pub user: String,
    /// The declared intent (agent sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The ticket (agent sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The earliest record's time.
    pub first: Option<MicroTime>,
    /// The latest record's time.
    pub last: Option<MicroTime>,
    /// Requests (distinct audit IDs of request and response records).
    pub requests: u64,
    /// Requests policy denied.
    pub denials: u64,
    /// Requests policy sent for review.
    pub reviews: u64,
    /// Distinct stream recordings.
    pub recordings: u64,
}

#[derive(Debug, Default)]
struct Tally {
    summary: Summary,
    requests: HashSet<String>,
    denials: HashSet<String>,
    reviews: HashSet<String>,
    recordings: BTreeSet<String>,
}

/// Folds records, in log order, into per-session summaries.
#[derive(Debug, Default)]
pub struct Aggregator {
    sessions: BTreeMap<SessionKey, Tally>,
    by_audit: HashMap<String, SessionKey>,
}

impl Aggregator {
    /// Adds one record.
    pub fn add(&mut self, record: &Record) {
        let audit = record.audit_id.clone().filter(|a| !a.is_empty());
        let key = SessionKey::of(record)
            .or_else(|| audit.as_ref().and_then(|a| self.by_audit.get(a).cloned()));
        let Some(key) = key else { return };
        if let Some(a) = &audit {
            self.by_audit
                .entry(a.clone())
                .or_insert_with(|| key.clone());
        }
        let tally = self.sessions.entry(key.clone()).or_insert_with(|| Tally {
            summary: Summary {
                id: key.id(),
                kind: key.kind().to_owned(),
                ..Summary::default()
            },
            ..Tally::default()
        });
        tally.add(record, audit);
    }

    /// The sessions, ordered by their first record's time.
    pub fn finish(self) -> Vec<Summary> {
        let mut out: Vec<Summary> = self
            .sessions
            .into_values()
            .map(|t| {
                let mut s = t.summary;
                s.requests = t.requests.len() as u64;
                s.denials = t.denials.len() as u64;
                s.reviews = t.reviews.len() as u64;
                s.recordings = t.recordings.len() as u64;
                s
            })
            .collect();
        out.sort_by(|a, b| a.first.cmp(&b.first).then_with(|| a.id.cmp(&b.id)));
        out
    }
}

impl Tally {
    fn add(&mut self, r: &Record, audit: Option<String>) {
        let s = &mut self.summary;
        let time = r.request_received_timestamp.unwrap_or(r.stage_timestamp);
        s.first = Some(s.first.map_or(time, |f| f.min(time)));
        s.last = Some(
            s.last
                .map_or(r.stage_timestamp, |l| l.max(r.stage_timestamp)),
        );
        let acting = matches!(
            r.custos.record_kind,
            RecordKind::Request | RecordKind::Response | RecordKind::SessionStarted
        );
        if s.user.is_empty() && acting {
            if let Some(u) = &r.user {
                s.user.clone_from(&u.username);
            }
        }
        if let Some(session) = &r.custos.session {
            if s.intent.is_none() {
                s.intent.clone_from(&session.intent);
            }
            if s.ticket.is_none() {
                s.ticket.clone_from(&session.ticket);
            }
        }
        for stream in &r.custos.streams {
            self.recordings.insert(stream.recording.clone());
        }
        let Some(audit) = audit else { return };
        if matches!(
            r.custos.record_kind,
            RecordKind::Request | RecordKind::Response
        ) {
            self.requests.insert(audit.clone());
        }
        match r.custos.decision.as_ref().map(|d| &d.outcome) {
            Some(Outcome::Deny) => {
                self.denials.insert(audit);
            }
            Some(Outcome::Review) => {
                self.reviews.insert(audit);
            }
            _ => {}
        }
    }
}

/// The records of one request (same audit ID), or one record without an audit ID, in log order.
#[derive(Debug, Clone)]
pub struct Step {
    /// The shared audit ID.
    pub audit_id: Option<String>,
    /// Its records, by entry id.
    pub records: Vec<Logged>,
}

impl Step {
    /// The request record (as received, before forwarding).
    pub fn request(&self) -> Option<&Record> {
        self.find(|k| *k == RecordKind::Request)
    }

    /// The last response record (how the request ended).
    pub fn response(&self) -> Option<&Record> {
        self.records
            .iter()
            .rev()
            .map(|l| &l.record)
            .find(|r| r.custos.record_kind == RecordKind::Response)
    }

    /// The request record, else the response, else the first record.
    pub fn main(&self) -> &Record {
        self.request()
            .or_else(|| self.response())
            .unwrap_or_else(|| &self.records[0].record)
    }

    /// When it began.
    pub fn time(&self) -> MicroTime {
        let r = self.main();
        r.request_received_timestamp.unwrap_or(r.stage_timestamp)
    }

    /// Whether the step is an API request (it has a request or response record).
    pub fn is_request(&self) -> bool {
        self.request().is_some() || self.response().is_some()
    }

    /// Whether Custos answered the request itself (a policy denial, a review not approved, or a
    /// refusal such as a path or header check) instead of forwarding it.
    pub fn refused_by_custos(&self) -> Option<String> {
        let request = self.request();
        if let Some(d) = request.and_then(|r| r.custos.decision.as_ref()) {
            let policies = if d.policy_ids.is_empty() {
                String::new()
            } else {
                format!(" ({})", d.policy_ids.join(", "))
            };
            match d.outcome {
                Outcome::Deny => return Some(format!("denied by policy{policies}")),
                Outcome::Review => {
                    let approved = self.response().is_some_and(|r| r.custos.approval.is_some());
                    let granted = request.is_some_and(|r| r.custos.grant.is_some());
                    if !approved && !granted {
                        return Some(format!("held for review{policies} and not approved"));
                    }
                }
                _ => {}
            }
        }
        let response = self.response()?;
        let status = response.response_status.as_ref()?;
        // Custos's own refusals carry a Status reason and an error; the apiserver's answers carry
        // neither (the gateway records only their code).
        match (&status.reason, &response.custos.error) {
            (Some(reason), Some(error)) => Some(format!(
                "refused by Custos: {} {reason}: {error}",
                status.code.unwrap_or_default()
            )),
            _ => None,
        }
    }

    fn find(&self, want: impl Fn(&RecordKind) -> bool) -> Option<&Record> {
        self.records
            .iter()
            .map(|l| &l.record)
            .find(|r| want(&r.custos.record_kind))
    }
}

/// Groups a session's records into steps, in the order their first record was logged.
pub fn steps(mut records: Vec<Logged>) -> Vec<Step> {
    records.sort_by_key(|l| l.id);
    records.dedup_by_key(|l| l.id);
    let mut out: Vec<Step> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for logged in records {
        match logged.record.audit_id.clone().filter(|a| !a.is_empty()) {
            Some(audit) => match index.get(&audit) {
                Some(&i) => out[i].records.push(logged),
                None => {
                    index.insert(audit.clone(), out.len());
                    out.push(Step {
                        audit_id: Some(audit),
                        records: vec![logged],
                    });
                }
            },
            None => out.push(Step {
                audit_id: None,
                records: vec![logged],
            }),
        }
    }
    out
}
