//! Claim validation and mapping: verified claims in, [`Identity`] out. Pure: `now` is passed in.
//!
//! Mirrors the apiserver's OIDC authenticator: `exp` required, `nbf`/`iat` checked with leeway, `aud`
//! must contain a configured client id, username from the configured claim with the apiserver's prefix
//! rules, groups from a string or an array of strings, required claims compared exactly. Stricter in
//! three places, all fail-closed: `email` as username needs `email_verified: true` (unless configured
//! otherwise), `iat` must not be in the future, and no mapped username or group may start with
//! `system:` (an IdP must not be able to mint `system:masters`).

use custos_kube::UserInfo;
use serde_json::{Map, Value};

use super::OidcIssuerConfig;
use crate::identity::token_fingerprint;
use crate::jwt::truncate;
use crate::{AuthMethod, AuthnError, Identity, IdentityClaims};

/// The longest `jti` used as a token id; longer ones are replaced by the token's fingerprint.
const MAX_JTI_CHARS: usize = 256;

/// Validates verified `claims` against `config` at `now` (Unix seconds) and maps them to an identity.
pub(crate) fn to_identity(
    config: &OidcIssuerConfig,
    claims: &Map<String, Value>,
    token: &str,
    now: u64,
) -> Result<Identity, AuthnError> {
    let iss = string_claim(claims, "iss")?.ok_or_else(|| missing("iss"))?;
    if iss != config.issuer_url {
        return Err(AuthnError::UnknownIssuer {
            iss: truncate(iss, 100),
        });
    }
    let expires_at = check_times(claims, now, config.clock_skew_secs)?;
    let aud = audiences(claims)?;
    if !aud.iter().any(|a| config.audiences.contains(a)) {
        return Err(AuthnError::WrongAudience);
    }
    check_required(config, claims)?;
    let user = UserInfo {
        username: username(config, claims)?,
        uid: match config.uid_claim.as_str() {
            "" => None,
            claim => string_claim(claims, claim)?.map(str::to_string),
        },
        groups: groups(config, claims)?,
        extra: Default::default(),
    };
    let sub = string_claim(claims, "sub")?.map(str::to_string);
    let token_id = match string_claim(claims, "jti") {
        Ok(Some(jti)) if !jti.is_empty() && jti.chars().count() <= MAX_JTI_CHARS => jti.to_string(),
        _ => token_fingerprint(token),
    };
    Ok(Identity {
        user,
        method: AuthMethod::Oidc {
            issuer: config.issuer_url.clone(),
        },
        token_id: Some(token_id),
        expires_at: Some(expires_at),
        claims: Some(IdentityClaims {
            iss: iss.to_string(),
            sub,
            aud,
        }),
    })
}

/// Checks `exp` (required), `nbf` and `iat` with `skew` seconds of leeway; returns `exp`.
fn check_times(claims: &Map<String, Value>, now: u64, skew: u64) -> Result<u64, AuthnError> {
    let exp = time_claim(claims, "exp")?.ok_or_else(|| missing("exp"))?;
    if now > exp.saturating_add(skew) {
        return Err(AuthnError::Expired);
    }
    if let Some(nbf) = time_claim(claims, "nbf")? {
        if nbf > now.saturating_add(skew) {
            return Err(AuthnError::NotYetValid);
        }
    }
    if let Some(iat) = time_claim(claims, "iat")? {
        if iat > now.saturating_add(skew) {
            return Err(AuthnError::IssuedInFuture);
        }
    }
    Ok(exp)
}

/// A NumericDate claim: a non-negative JSON number (fractions are truncated, as go-oidc does).
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, AuthnError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_u64() {
                return Ok(Some(secs));
            }
            match n.as_f64() {
                Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
                _ => Err(invalid(name, "not a non-negative number of seconds")),
            }
        }
        Some(_) => Err(invalid(name, "not a number")),
    }
}

/// `aud` as a list: a string, or a non-empty array of strings.
fn audiences(claims: &Map<String, Value>) -> Result<Vec<String>, AuthnError> {
    match claims.get("aud") {
        None => Err(missing("aud")),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(invalid("aud", "array holds a non-string")),
            })
            .collect(),
        Some(_) => Err(invalid("aud", "not a string or an array of strings")),
    }
}

fn check_required(
    config: &OidcIssuerConfig,
    claims: &Map<String, Value>,
) -> Result<(), AuthnError> {
    for (name, want) in &config.required_claims {
        match claims.get(name) {
            Some(Value::String(got)) if got == want => {}
            _ => {
                return Err(AuthnError::RequiredClaimMismatch {
                    claim: name.clone(),
                })
            }
        }
    }
    Ok(())
}

fn username(config: &OidcIssuerConfig, claims: &Map<String, Value>) -> Result<String, AuthnError> {
    let claim = config.username_claim.as_str();
    let name = string_claim(claims, claim)?.ok_or_else(|| missing(claim))?;
    if name.is_empty() {
        return Err(invalid(claim, "empty"));
    }
    if claim == "email" && !config.allow_unverified_email {
        match claims.get("email_verified") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) | None => return Err(AuthnError::EmailNotVerified),
            Some(_) => return Err(invalid("email_verified", "not a boolean")),
        }
    }
    let username = format!("{}{name}", config.effective_username_prefix());
    reject_reserved("username", &username)?;
    Ok(username)
}

fn groups(
    config: &OidcIssuerConfig,
    claims: &Map<String, Value>,
) -> Result<Vec<String>, AuthnError> {
    let claim = config.groups_claim.as_str();
    if claim.is_empty() {
        return Ok(Vec::new());
    }
    let raw: Vec<&str> = match claims.get(claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| invalid(claim, "array holds a non-string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid(claim, "not a string or an array of strings")),
    };
    let prefix = config.groups_prefix.as_deref().unwrap_or("");
    raw.into_iter()
        .map(|g| {
            let group = format!("{prefix}{g}");
            reject_reserved("group", &group).map(|()| group)
        })
        .collect()
}

fn reject_reserved(what: &'static str, name: &str) -> Result<(), AuthnError> {
    if name.starts_with("system:") {
        return Err(AuthnError::ReservedName {
            what,
            name: truncate(name, 100),
        });
    }
    Ok(())
}

/// A claim that must be a string when present.
fn string_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, AuthnError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(name, "not a string")),
    }
}

fn missing(claim: &str) -> AuthnError {
    AuthnError::MissingClaim {
        claim: truncate(claim, 100),
    }
}

fn invalid(claim: &str, reason: &'static str) -> AuthnError {
    AuthnError::InvalidClaim {
        claim: truncate(claim, 100),
        reason,
    }
}

#[cfg(test)]
mod tests;
