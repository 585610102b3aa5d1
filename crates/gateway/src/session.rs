//! Agent sessions: `custos login --intent "…"` asks the API for a short-lived Custos session token,
//! bound to the caller's identity (as authenticated when it was minted) and to the declared intent and
//! ticket. Requests carrying it are authenticated here, carry the session into policy context, reviews
//! and every record, and so can be read back as one session. Only the token's SHA-256 is stored.

use base64::Engine;
use sha2::{Digest, Sha256};

use custos_approval::{new_id, Person, Session};
use custos_audit::record::{MicroTime, Record, RecordKind, SessionRef};
use custos_authn::{AuthMethod, AuthnError, Identity};

use crate::error::GatewayError;
use crate::recorder;
use crate::Gateway;

/// Every session token starts with this, so it is told apart from a JWT without parsing.
pub const TOKEN_PREFIX: &str = "cst_";

/// Longest intent kept, in characters.
pub const MAX_INTENT: usize = 500;

/// Longest ticket reference kept, in characters.
pub const MAX_TICKET: usize = 100;

/// Whether `token` is a Custos session token (by its prefix).
pub fn is_session_token(token: &str) -> bool {
    token.starts_with(TOKEN_PREFIX)
}

fn digest(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity and session a session token stands for; 401 if unknown or expired, 503 if the
/// store cannot say.
pub async fn authenticate(gw: &Gateway, token: &str) -> Result<(Identity, Session), GatewayError> {
    if token.len() > 128 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthnError::MalformedToken("not a Custos session token").into());
    }
    let session = gw
        .approvals
        .store
        .session_by_token(&digest(token))
        .await
        .map_err(|e| GatewayError::ApprovalsUnavailable(e.to_string()))?
        .ok_or(AuthnError::MalformedToken(
            "unknown Custos session token (log in again with `custos login --intent`)",
        ))?;
    if recorder::now() >= session.expires {
        return Err(AuthnError::MalformedToken(
            "the Custos session has ended (log in again with `custos login --intent`)",
        )
        .into());
    }
    let identity = Identity {
        user: custos_kube::UserInfo {
            username: session.user.username.clone(),
            uid: session.uid.clone(),
            groups: session.user.groups.clone(),
            extra: Default::default(),
        },
        method: AuthMethod::Oidc {
            issuer: session.issuer.clone().unwrap_or_default(),
        },
        token_id: Some(session.id.clone()),
        expires_at: Some(session.expires.unix_micros() / 1_000_000),
        claims: None,
    };
    Ok((identity, session))
}

/// What a caller asks for when opening a session.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewSession {
    /// Why: one sentence (mandatory).
    pub intent: String,
    /// The ticket the work is for.
    #[serde(default)]
    pub ticket: Option<String>,
    /// How long, in seconds (default one hour, at most the gateway's limit).
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// A session just opened: what the caller keeps (the token is shown once).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Opened {
    /// Session id.
    pub id: String,
    /// The session token (`cst_…`); Custos keeps only its digest.
    pub token: String,
    /// When it ends.
    pub expires: MicroTime,
    /// The intent, as recorded.
    pub intent: String,
    /// The ticket, as recorded.
    pub ticket: Option<String>,
}

/// Why a session could not be opened (a client error unless the store failed).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The request is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The store or the log failed.
    #[error("{0}")]
    Unavailable(String),
}

/// Opens a session for `identity` (not itself a session: sessions do not beget sessions); recorded.
pub async fn open(
    gw: &Gateway,
    identity: &Identity,
    from_session: bool,
    ask: NewSession,
    max_ttl: std::time::Duration,
) -> Result<Opened, OpenError> {
    if from_session {
        return Err(OpenError::Invalid(
            "a session cannot open another session: log in with your own identity".into(),
        ));
    }
    let intent = ask.intent.trim();
    if intent.is_empty() {
        return Err(OpenError::Invalid(
            "an intent is required: say what you are about to do".into(),
        ));
    }
    if intent.chars().count() > MAX_INTENT || intent.chars().any(char::is_control) {
        return Err(OpenError::Invalid(format!(
            "the intent must be one line of at most {MAX_INTENT} characters"
        )));
    }
    let ticket = ask
        .ticket
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if let Some(t) = &ticket {
        if t.chars().count() > MAX_TICKET || t.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(OpenError::Invalid(format!(
                "the ticket must be one word of at most {MAX_TICKET} characters"
            )));
        }
    }
    let ttl = ask.ttl_seconds.unwrap_or(3600);
    if ttl == 0 || ttl > max_ttl.as_secs() {
        return Err(OpenError::Invalid(format!(
            "ttlSeconds must be between 1 and {}",
            max_ttl.as_secs()
        )));
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| OpenError::Unavailable(e.to_string()))?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let now = recorder::now();
    let expires = MicroTime::from_unix_micros(now.unix_micros() + ttl * 1_000_000)
        .map_err(|e| OpenError::Invalid(e.to_string()))?;
    let issuer = match &identity.method {
        AuthMethod::Oidc { issuer } => Some(issuer.clone()),
        _ => None,
    };
    let session = Session {
        id: new_id("ss-"),
        token_sha256: digest(&token),
        user: Person {
            username: identity.user.username.clone(),
            groups: identity.user.groups.clone(),
        },
        uid: identity.user.uid.clone(),
        intent: intent.to_owned(),
        ticket: ticket.clone(),
        created: now,
        expires,
        issuer,
    };
    gw.approvals
        .store
        .insert_session(&session)
        .await
        .map_err(|e| OpenError::Unavailable(e.to_string()))?;
    let mut rec = Record::new(RecordKind::SessionStarted, now);
    rec.user = Some(recorder::user_info(identity));
    rec.custos.session = Some(session_ref(&session));
    rec.custos.gateway = None;
    rec.annotations
        .insert("custos.dev/session-expires".into(), expires.to_string());
    gw.recorder
        .append(&rec)
        .await
        .map_err(|e| OpenError::Unavailable(e.to_string()))?;
    Ok(Opened {
        id: session.id,
        token,
        expires,
        intent: intent.to_owned(),
        ticket,
    })
}

/// The session as records carry it.
pub fn session_ref(s: &Session) -> SessionRef {
    SessionRef {
        id: s.id.clone(),
        intent: Some(s.intent.clone()),
        ticket: s.ticket.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_tokens_are_told_apart_by_prefix_and_hashed() {
        assert!(is_session_token("cst_abc"));
        assert!(!is_session_token("eyJhbGciOi"));
        assert_eq!(digest("x").len(), 64);
        assert_ne!(digest("cst_a"), digest("cst_b"));
    }
}
