//! OIDC flows against the identity provider: authorization code with PKCE on a loopback redirect (people
//! with a browser), device code (people without one), client credentials (agents), and refresh.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::cache::TokenSet;
use crate::{random_urlsafe, LoginError};

/// Scopes asked for: identity, e-mail, groups, and a refresh token.
pub const SCOPES: &str = "openid email profile groups offline_access";
/// How long a person has to finish a browser or device login.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest request the loopback redirect listener reads.
const MAX_CALLBACK_BYTES: usize = 16 * 1024;

/// How to obtain tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Authorization code with PKCE and a loopback redirect (a person with a browser).
    AuthCode,
    /// Device authorization (a person on a machine without a browser).
    DeviceCode,
    /// Client credentials (an agent with its own client id and secret).
    ClientCredentials,
}

impl Grant {
    /// Parses the CLI spelling.
    pub fn parse(s: &str) -> Option<Grant> {
        match s {
            "auth-code" => Some(Grant::AuthCode),
            "device-code" => Some(Grant::DeviceCode),
            "client-credentials" => Some(Grant::ClientCredentials),
            _ => None,
        }
    }

    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::AuthCode => "auth-code",
            Grant::DeviceCode => "device-code",
            Grant::ClientCredentials => "client-credentials",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    grant_types_supported: Vec<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// An OIDC provider and the client Custos logs in as.
pub struct Provider {
    http: reqwest::Client,
    endpoints: Discovery,
    client_id: String,
    client_secret: Option<String>,
    /// Extra parameters for the authorization request (e.g. Dex's `connector_id`).
    pub auth_params: Vec<(String, String)>,
}

impl Provider {
    /// Reads the provider's discovery document; `ca_file` replaces the system roots when given.
    pub async fn discover(
        issuer: &str,
        client_id: &str,
        client_secret: Option<String>,
        ca_file: Option<&Path>,
    ) -> Result<Self, LoginError> {
        let http = custos_authn::oidc::http_client(ca_file)?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let endpoints: Discovery = http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| LoginError::Provider(format!("discovery at {url}: {e}")))?
            .json()
            .await
            .map_err(|e| LoginError::Provider(format!("discovery at {url}: {e}")))?;
        if endpoints.issuer != issuer {
            return Err(LoginError::Provider(format!(
                "discovery names issuer {:?}, expected {issuer:?}",
                endpoints.issuer
            )));
        }
        Ok(Provider {
            http,
            endpoints,
            client_id: client_id.to_owned(),
            client_secret,
            auth_params: Vec::new(),
        })
    }

    /// Runs `grant` and returns fresh tokens. `show` receives what a person must see (a URL, a code).
    pub async fn login(
        &self,
        grant: Grant,
        show: &mut dyn FnMut(&str),
    ) -> Result<TokenSet, LoginError> {
        match grant {
            Grant::AuthCode => self.auth_code(show).await,
            Grant::DeviceCode => self.device_code(show).await,
            Grant::ClientCredentials => self.client_credentials().await,
        }
    }

    /// Authorization code with PKCE: serve a one-shot redirect on 127.0.0.1, show the URL to open.
    pub async fn auth_code(&self, show: &mut dyn FnMut(&str)) -> Result<TokenSet, LoginError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
            LoginError::Provider(format!("cannot listen for the login redirect: {e}"))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| LoginError::Provider(e.to_string()))?
            .port();
        // Public clients may redirect to http://localhost on any port (RFC 8252 §7.3).
        let redirect_uri = format!("http://localhost:{port}/callback");
        let state = random_urlsafe(16)?;
        let verifier = random_urlsafe(48)?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let mut url = url::Url::parse(&self.endpoints.authorization_endpoint)
            .map_err(|e| LoginError::Provider(format!("authorization_endpoint: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("scope", SCOPES)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            for (k, v) in &self.auth_params {
                q.append_pair(k, v);
            }
        }
        show(&format!("Open this URL to log in:\n\n    {url}\n"));
        let code = tokio::time::timeout(LOGIN_TIMEOUT, wait_for_code(&listener, &state))
            .await
            .map_err(|_| {
                LoginError::NotCompleted("no answer from the browser within 5 minutes".into())
            })??;
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
        ])
        .await
    }

    /// Device authorization (RFC 8628): show the code and URL, poll until the person approves.
    pub async fn device_code(&self, show: &mut dyn FnMut(&str)) -> Result<TokenSet, LoginError> {
        #[derive(Deserialize)]
        struct DeviceAuth {
            device_code: String,
            user_code: String,
            verification_uri: String,
            #[serde(default)]
            verification_uri_complete: Option<String>,
            #[serde(default)]
            interval: Option<u64>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let endpoint = self
            .endpoints
            .device_authorization_endpoint
            .as_deref()
            .ok_or_else(|| {
                LoginError::Unsupported(
                    "the identity provider offers no device authorization endpoint".into(),
                )
            })?;
        let resp = self
            .with_client_auth(self.http.post(endpoint))
            .form(&[("client_id", self.client_id.as_str()), ("scope", SCOPES)])
            .send()
            .await
            .map_err(|e| LoginError::Provider(format!("device authorization: {e}")))?;
        let auth: DeviceAuth = resp
            .error_for_status()
            .map_err(|e| LoginError::Provider(format!("device authorization: {e}")))?
            .json()
            .await
            .map_err(|e| LoginError::Provider(format!("device authorization: {e}")))?;
        show(&format!(
            "To log in, open {} and enter the code {}{}\n",
            auth.verification_uri,
            auth.user_code,
            auth.verification_uri_complete
                .as_deref()
                .map(|u| format!("\n(or open {u})"))
                .unwrap_or_default()
        ));
        let mut interval = Duration::from_secs(auth.interval.unwrap_or(5).clamp(1, 60));
        let deadline =
            Instant::now() + Duration::from_secs(auth.expires_in.unwrap_or(300).min(900));
        loop {
            tokio::time::sleep(interval).await;
            if Instant::now() > deadline {
                return Err(LoginError::NotCompleted("the device code expired".into()));
            }
            match self
                .token(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &auth.device_code),
                ])
                .await
            {
                Ok(t) => return Ok(t),
                Err(LoginError::NotCompleted(e)) if e == "authorization_pending" => {}
                Err(LoginError::NotCompleted(e)) if e == "slow_down" => {
                    interval += Duration::from_secs(5)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Client credentials: an agent's own id and secret, no person involved.
    pub async fn client_credentials(&self) -> Result<TokenSet, LoginError> {
        if self.client_secret.is_none() {
            return Err(LoginError::Unsupported(
                "client-credentials needs a client secret".into(),
            ));
        }
        let supported = &self.endpoints.grant_types_supported;
        if !supported.is_empty() && !supported.iter().any(|g| g == "client_credentials") {
            return Err(LoginError::Unsupported(format!(
                "the identity provider does not offer the client_credentials grant (it offers: {})",
                supported.join(", ")
            )));
        }
        self.token(&[
            ("grant_type", "client_credentials"),
            ("scope", "openid email profile groups"),
        ])
        .await
    }

    /// Exchanges a refresh token for new tokens.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, LoginError> {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    fn with_client_auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.client_secret {
            Some(secret) => req.basic_auth(&self.client_id, Some(secret)),
            None => req,
        }
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<TokenSet, LoginError> {
        let mut all: Vec<(&str, &str)> = form.to_vec();
        if self.client_secret.is_none() {
            all.push(("client_id", &self.client_id));
        }
        let resp = self
            .with_client_auth(self.http.post(&self.endpoints.token_endpoint))
            .form(&all)
            .send()
            .await
            .map_err(|e| LoginError::Provider(format!("token endpoint: {e}")))?;
        let status = resp.status();
        let body: TokenResponse = resp.json().await.map_err(|e| {
            LoginError::Provider(format!(
                "token endpoint answered {status} without JSON: {e}"
            ))
        })?;
        if let Some(err) = body.error {
            // RFC 8628 polling states travel as errors; the device loop looks at them.
            if matches!(err.as_str(), "authorization_pending" | "slow_down") {
                return Err(LoginError::NotCompleted(err));
            }
            return Err(LoginError::Provider(format!(
                "{err}{}",
                body.error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )));
        }
        let id_token = body.id_token.ok_or_else(|| {
            LoginError::Provider(format!(
                "token endpoint answered {status} without an id_token"
            ))
        })?;
        Ok(TokenSet::new(id_token, body.refresh_token))
    }
}

/// Accepts connections on the loopback listener until one brings `/callback?code=…&state=…`.
async fn wait_for_code(listener: &TcpListener, state: &str) -> Result<String, LoginError> {
    loop {
        let (mut conn, _) = listener
            .accept()
            .await
            .map_err(|e| LoginError::Provider(format!("login redirect listener: {e}")))?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_CALLBACK_BYTES {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let outcome = parse_callback(&buf, state);
        let (status, text) = match &outcome {
            Some(Ok(_)) => ("200 OK", "Logged in to Custos. You can close this window."),
            Some(Err(_)) => ("400 Bad Request", "Login failed; see the terminal."),
            None => ("404 Not Found", "Not found."),
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = conn.write_all(resp.as_bytes()).await;
        let _ = conn.shutdown().await;
        if let Some(result) = outcome {
            return result;
        }
    }
}

/// `Some(code)` for a redirect to `/callback` with the right state; `None` for any other path.
fn parse_callback(request: &[u8], state: &str) -> Option<Result<String, LoginError>> {
    let text = std::str::from_utf8(request).ok()?;
    let target = text
        .lines()
        .next()?
        .strip_prefix("GET ")?
        .split(' ')
        .next()?;
    let url = url::Url::parse(&format!("http://localhost{target}")).ok()?;
    if url.path() != "/callback" {
        return None;
    }
    let get = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(err) = get("error") {
        let desc = get("error_description").unwrap_or_default();
        return Some(Err(LoginError::NotCompleted(
            format!("{err} {desc}").trim().to_owned(),
        )));
    }
    if get("state").as_deref() != Some(state) {
        return Some(Err(LoginError::NotCompleted(
            "the redirect's state does not match this login (possible CSRF)".into(),
        )));
    }
    Some(get("code").ok_or_else(|| LoginError::NotCompleted("the redirect carried no code".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_with_matching_state_yields_the_code() {
        let req = b"GET /callback?code=abc&state=s1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
        assert_eq!(
            parse_callback(req, "s1").and_then(Result::ok).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn callback_with_another_state_is_refused() {
        let req = b"GET /callback?code=abc&state=evil HTTP/1.1\r\n\r\n";
        assert!(matches!(
            parse_callback(req, "s1"),
            Some(Err(LoginError::NotCompleted(_)))
        ));
    }

    #[test]
    fn provider_error_is_reported() {
        let req =
            b"GET /callback?error=access_denied&error_description=no&state=s1 HTTP/1.1\r\n\r\n";
        match parse_callback(req, "s1") {
            Some(Err(LoginError::NotCompleted(m))) => assert_eq!(m, "access_denied no"),
            _ => panic!("expected an error"),
        }
    }

    #[test]
    fn other_paths_and_garbage_are_ignored() {
        assert!(parse_callback(b"GET /favicon.ico HTTP/1.1\r\n\r\n", "s").is_none());
        assert!(parse_callback(b"\xff\xfe", "s").is_none());
        assert!(parse_callback(b"", "s").is_none());
        assert!(parse_callback(b"POST /callback HTTP/1.1\r\n\r\n", "s").is_none());
    }

    #[test]
    fn grants_round_trip_their_cli_names() {
        for g in [Grant::AuthCode, Grant::DeviceCode, Grant::ClientCredentials] {
            assert_eq!(Grant::parse(g.as_str()), Some(g));
        }
        assert_eq!(Grant::parse("password"), None);
    }
}
