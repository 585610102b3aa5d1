//! Custos's own HTTP JSON API, under `/custos/v1/` on the gateway's listener (a prefix the Kubernetes
//! API never uses), authenticated like every other request. Reviews (list, show, approve, deny),
//! grants (list, revoke) and the OpenAPI description (`docs/api/openapi.yaml`). Errors are Kubernetes
//! `Status` objects, like everything else Custos answers.

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use custos_approval::{ApprovalError, Grant, Review, State, Verdict, VoteError};
use custos_authn::Identity;
use custos_kube::{Status, StatusReason};

use crate::approve::{self, ApproveError};
use crate::rescue::status_response;
use crate::{full, Body, Gateway};

/// The prefix of every API path.
pub const PREFIX: &str = "/custos/";

/// The OpenAPI description, served at `/custos/v1/openapi.yaml`.
const OPENAPI: &str = include_str!("../../../docs/api/openapi.yaml");

/// Largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// Whether `path` belongs to the API rather than the Kubernetes API.
pub fn is_api(path: &str) -> bool {
    path.starts_with(PREFIX) || path == "/custos"
}

/// A decision or revocation: why (mandatory).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: String,
}

/// A list answer.
#[derive(Debug, Serialize)]
struct Items<T> {
    items: Vec<T>,
}

/// Serves one API request as `identity`.
pub async fn handle(
    gw: &Gateway,
    identity: &Identity,
    session: Option<&custos_approval::Session>,
    req: Request<Incoming>,
    audit_id: &str,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let segments: Vec<&str> = path
        .trim_start_matches(PREFIX)
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let body = match read(body).await {
        Ok(b) => b,
        Err(s) => return status_response(&s, audit_id),
    };
    let result = route(
        gw,
        identity,
        session,
        &parts.method,
        &segments,
        &query,
        &body,
    )
    .await;
    match result {
        Ok(resp) => resp,
        Err(status) => status_response(&status, audit_id),
    }
}

/// A refusal, as the `Status` the client gets (boxed: it is large, and errors should be small).
type Refusal = Box<Status>;

async fn read(body: Incoming) -> Result<Bytes, Refusal> {
    match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(Box::new(Status::failure(
            StatusReason::RequestEntityTooLarge,
            format!("API request bodies are limited to {MAX_BODY} bytes"),
        ))),
    }
}

async fn route(
    gw: &Gateway,
    identity: &Identity,
    session: Option<&custos_approval::Session>,
    method: &Method,
    segments: &[&str],
    query: &str,
    body: &Bytes,
) -> Result<Response<Body>, Refusal> {
    let me = approve::person(identity);
    match (method, segments) {
        (&Method::GET, ["v1", "openapi.yaml"]) => Ok(text(OPENAPI, "application/yaml")),
        (&Method::POST, ["v1", "sessions"]) => {
            let ask: crate::session::NewSession = serde_json::from_slice(body).map_err(|e| {
                Status::bad_request(format!(
                    "the body must be {{\"intent\": \"...\", \"ticket\": \"...\", \"ttlSeconds\": N}}: {e}"
                ))
            })?;
            let opened = crate::session::open(
                gw,
                identity,
                session.is_some(),
                ask,
                gw.approvals.settings.max_session,
            )
            .await
            .map_err(|e| match e {
                crate::session::OpenError::Invalid(m) => Status::bad_request(m),
                crate::session::OpenError::Unavailable(m) => Status::service_unavailable(m),
            })?;
            Ok(json(StatusCode::CREATED, &opened))
        }
        (&Method::GET, ["v1", "reviews"]) => {
            let state = param(query, "state")
                .map(|s| match s.as_str() {
                    "pending" => Ok(State::Pending),
                    "approved" => Ok(State::Approved),
                    "denied" => Ok(State::Denied),
                    "expired" => Ok(State::Expired),
                    other => Err(Refusal::new(Status::bad_request(format!(
                        "state {other:?}: use pending, approved, denied or expired"
                    )))),
                })
                .transpose()?;
            let limit = param(query, "limit")
                .map(|l| {
                    l.parse::<usize>()
                        .map_err(|_| Refusal::new(Status::bad_request("limit must be a number")))
                })
                .transpose()?
                .unwrap_or(100)
                .min(1000);
            let all = gw
                .approvals
                .store
                .reviews(state, limit)
                .await
                .map_err(store)?;
            let items: Vec<Review> = all.into_iter().filter(|r| may_see(&me, r)).collect();
            Ok(json(StatusCode::OK, &Items { items }))
        }
        (&Method::GET, ["v1", "reviews", id]) => {
            let r = find(gw, id).await?;
            if !may_see(&me, &r) {
                return Err(not_found(id).into());
            }
            Ok(json(StatusCode::OK, &r))
        }
        (&Method::POST, ["v1", "reviews", id, verb @ ("approve" | "deny")]) => {
            let reason = reason(body)?;
            let verdict = if *verb == "approve" {
                Verdict::Approve
            } else {
                Verdict::Deny
            };
            let r = gw
                .approvals
                .decide(&gw.recorder, id, &me, verdict, &reason)
                .await
                .map_err(decide_error)?;
            Ok(json(StatusCode::OK, &r))
        }
        (&Method::GET, ["v1", "grants"]) => {
            let active = param(query, "active").is_none_or(|a| a != "false");
            let at = active.then(crate::recorder::now);
            let all = gw.approvals.store.grants(None, at).await.map_err(store)?;
            // Holders see their own grants; approvers those of reviews they may decide.
            let mut items: Vec<Grant> = Vec::new();
            for g in all {
                let mine = g.username == me.username;
                let approver = !mine
                    && gw
                        .approvals
                        .store
                        .review(&g.review_id)
                        .await
                        .map_err(store)?
                        .is_some_and(|r| may_see(&me, &r));
                if mine || approver {
                    items.push(g);
                }
            }
            Ok(json(StatusCode::OK, &Items { items }))
        }
        (&Method::POST, ["v1", "grants", id, "revoke"]) => {
            let reason = reason(body)?;
            let g = gw
                .approvals
                .store
                .grant(id)
                .await
                .map_err(store)?
                .ok_or_else(|| not_found(id))?;
            let review = gw
                .approvals
                .store
                .review(&g.review_id)
                .await
                .map_err(store)?;
            let may = g.username == me.username
                || review.is_some_and(|r| me.groups.iter().any(|grp| r.approvers.contains(grp)));
            if !may {
                return Err(Refusal::new(Status::forbidden(format!(
                    "{} may not revoke grant {id}: only its holder or the review's approvers may",
                    me.username
                ))));
            }
            let g = gw
                .approvals
                .revoke(&gw.recorder, id, &me, &reason)
                .await
                .map_err(decide_error)?;
            Ok(json(StatusCode::OK, &g))
        }
        _ => Err(Refusal::new(Status::failure(
            StatusReason::NotFound,
            "no such Custos API endpoint (see /custos/v1/openapi.yaml)",
        ))),
    }
}

/// Requesters see their own reviews; approvers see the reviews they may decide.
fn may_see(me: &custos_approval::Person, r: &Review) -> bool {
    r.requester.username == me.username || me.groups.iter().any(|g| r.approvers.contains(g))
}

fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn reason(body: &Bytes) -> Result<String, Refusal> {
    let r: Reason = serde_json::from_slice(body).map_err(|e| {
        Refusal::new(Status::bad_request(format!(
            "the body must be {{\"reason\": \"...\"}}: {e}"
        )))
    })?;
    if r.reason.trim().is_empty() {
        return Err(Refusal::new(Status::bad_request(
            "a justification is required: {\"reason\": \"...\"}",
        )));
    }
    Ok(r.reason)
}

async fn find(gw: &Gateway, id: &str) -> Result<Review, Refusal> {
    gw.approvals
        .store
        .review(id)
        .await
        .map_err(store)?
        .ok_or_else(|| Refusal::new(not_found(id)))
}

fn not_found(id: &str) -> Status {
    Status::failure(StatusReason::NotFound, format!("{id} not found"))
}

fn store(e: ApprovalError) -> Status {
    Status::service_unavailable(e.to_string())
}

fn decide_error(e: ApproveError) -> Status {
    match e {
        ApproveError::Store(ApprovalError::Vote(v)) => match v {
            VoteError::NoJustification => Status::bad_request(v.to_string()),
            VoteError::SelfApproval(_) | VoteError::NotAnApprover { .. } => {
                Status::forbidden(v.to_string())
            }
            VoteError::NotPending { .. } | VoteError::Expired(_) | VoteError::AlreadyVoted(_) => {
                Status {
                    code: 409,
                    ..Status::bad_request(v.to_string())
                }
            }
        },
        ApproveError::Store(ApprovalError::NotFound(what)) => {
            Status::failure(StatusReason::NotFound, format!("{what} not found"))
        }
        ApproveError::Conflict(_) => Status {
            code: 409,
            ..Status::bad_request(e.to_string())
        },
        other => Status::service_unavailable(other.to_string()),
    }
}

fn json<T: Serialize>(code: StatusCode, v: &T) -> Response<Body> {
    let bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
    let mut r = Response::new(full(Bytes::from(bytes)));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn text(body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from_static(body.as_bytes())));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_recognised_and_kubernetes_paths_are_not() {
        assert!(is_api("/custos/v1/reviews"));
        assert!(is_api("/custos"));
        assert!(!is_api("/custosx"));
        assert!(!is_api("/api/v1/pods"));
        assert!(!is_api("/apis/custos.dev/v1"));
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            param("state=pending&limit=5", "limit").as_deref(),
            Some("5")
        );
        assert_eq!(param("user=a%40b", "user").as_deref(), Some("a@b"));
        assert_eq!(param("x", "state"), None);
    }

    #[test]
    fn a_decision_needs_a_reason_and_nothing_else() {
        assert!(reason(&Bytes::from_static(b"{\"reason\":\"INC-1\"}")).is_ok());
        for bad in [
            &b"{}"[..],
            b"{\"reason\":\"  \"}",
            b"{\"reason\":\"x\",\"approve\":true}",
            b"not json",
            b"",
        ] {
            assert_eq!(
                reason(&Bytes::copy_from_slice(bad))
                    .expect_err("the test expects an error")
                    .code,
                400
            );
        }
    }

    #[test]
    fn vote_refusals_map_to_the_right_codes() {
        let code = |v: VoteError| decide_error(ApproveError::Store(ApprovalError::Vote(v))).code;
        assert_eq!(code(VoteError::SelfApproval("a".into())), 403);
        assert_eq!(
            code(VoteError::NotAnApprover {
                user: "a".into(),
                groups: "g".into()
            }),
            403
        );
        assert_eq!(code(VoteError::Expired("r".into())), 409);
        assert_eq!(code(VoteError::NoJustification), 400);
    }
}
