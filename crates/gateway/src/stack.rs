//! The request pipeline, top to bottom. Every request to the gateway passes these steps in this order;
//! the order is the security argument, so each step says why it stands where it does.
//!
//! ```text
//! trace → authenticate → sanitize → classify → decide → record → approve → forward → mask → record
//! ```
//! Approvals (holding a request for a human) are not built yet; a review is refused where they go.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;

use custos_authn::Identity;
use custos_kube::{classify, RequestAttributes};
use custos_mask::Hint;
use custos_policy::{BodyFacts, Outcome};

use crate::decide;

use crate::approve;
use crate::credentials::bearer_token;
use crate::error::GatewayError;
use crate::forward;
use crate::mask;
use crate::recorder::{self, RefusedRequest, RequestFacts};
use crate::rescue::rescue;
use crate::sanitize::{self, SanitizeError};
use crate::session;
use crate::{Body, ConnInfo, Gateway};
use custos_approval::Session;

/// Serves one request through the whole pipeline; never fails: errors become `Status` responses.
pub async fn handle(
    gw: Arc<Gateway>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    // trace: one id follows the request through our logs and the apiserver's audit log.
    let audit_id = audit_id(&req);
    let received = recorder::now();
    let method = req.method().as_str().to_owned();
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut verb = method.to_ascii_lowercase();
    let mut identity = None;
    let resp = match pipeline(&gw, &conn, req, &audit_id, &mut verb, &mut identity).await {
        Ok(resp) => resp,
        Err(e) => {
            gw.metrics.refuse(refusal_reason(&e));
            let resp = rescue(&e, &audit_id);
            // Refusals are evidence too (failed logins, impersonation attempts, path tricks).
            let (status, _) = crate::rescue::status_for(&e);
            let refused = RefusedRequest {
                method,
                uri,
                peer: conn.peer.ip(),
                identity,
                received,
            };
            gw.recorder.refusal(
                &audit_id,
                &refused,
                status.code,
                &format!("{:?}", status.reason),
                &status.message,
            );
            resp
        }
    };
    gw.metrics
        .observe(&verb, resp.status().as_u16(), started.elapsed());
    resp
}

async fn pipeline(
    gw: &Gateway,
    conn: &ConnInfo,
    req: Request<Incoming>,
    audit_id: &str,
    verb: &mut String,
    identity_slot: &mut Option<Identity>,
) -> Result<Response<Body>, GatewayError> {
    let received = recorder::now();
    // Bounded before anything looks at the headers' content.
    let size = sanitize::header_bytes(req.headers());
    if size > gw.limits.max_header_bytes {
        return Err(SanitizeError::HeadersTooLarge {
            size,
            limit: gw.limits.max_header_bytes,
        }
        .into());
    }

    // authenticate: first, so an anonymous caller learns nothing about paths, policy or the cluster.
    let (identity, session) = authenticate(gw, conn, &req).await?;
    *identity_slot = Some(identity.clone());

    // Custos's own API (reviews, grants, sessions) lives under /custos/: answered here, never
    // forwarded.
    if crate::api::is_api(req.uri().path()) {
        return Ok(crate::api::handle(gw, &identity, session.as_ref(), req, audit_id).await);
    }

    // sanitize: a body announced larger than we forward is refused (a chunked one is cut off at the
    // same limit while it streams). Client impersonation is refused outright without a policy, and
    // otherwise only what policy permits below is honoured.
    if sanitize::content_length(req.headers()).is_some_and(|n| n > gw.limits.max_body_bytes as u64)
    {
        return Err(GatewayError::BodyTooLarge {
            limit: gw.limits.max_body_bytes,
        });
    }
    let asked = match &gw.policy {
        Some(_) => custos_policy::impersonation_request(req.headers())?,
        None => {
            sanitize::refuse_impersonation(req.headers())?;
            None
        }
    };

    // classify: exactly the apiserver's RequestInfo, so policy judges what the apiserver will do. The
    // path is validated here too: one the apiserver could read differently from us is refused (400).
    let attrs = classify(req.method(), req.uri().path(), req.uri().query())?;
    verb.clone_from(&attrs.verb);
    tracing::debug!(audit_id, user = %identity.user.username, verb = %attrs.verb, resource = %attrs.resource, "classified");

    // decide: Cedar policy over who, what and — for writes — what the body asks for (so the body is
    // read first, bounded). Impersonation is decided first; the request is then judged as the caller.
    let upgrade = sanitize::is_upgrade(req.headers());
    let mut decision = None;
    let mut acting = identity.clone();
    let (mut parts, incoming) = req.into_parts();
    let mut hint = Hint::for_resource(&attrs.api_group, &attrs.resource, &attrs.subresource);
    hint.exempt.push(identity.user.username.clone());
    // A delete's body (DeleteOptions: propagation, grace period, preconditions, dryRun) is read too,
    // for its record and for a preview; policy still sees no body facts for it.
    let reads_body = decide::needs_body(&attrs) || recorder::is_delete(&attrs.verb);
    let buffered = if reads_body && !upgrade {
        let bytes = forward::read_body(incoming, gw.limits.max_body_bytes).await?;
        // A write carrying the marker would replace a real secret with it (a masked `kubectl get -o
        // yaml` applied back): refused, nothing changes.
        if decide::needs_body(&attrs) && custos_mask::carries_marker(&bytes) {
            return Err(GatewayError::CarriesMaskedValue {
                marker: custos_mask::MARKER,
            });
        }
        Buffered::Read(bytes)
    } else {
        Buffered::Stream(incoming)
    };
    if let Some(gate) = &gw.policy {
        let facts = match &buffered {
            Buffered::Read(bytes) if decide::needs_body(&attrs) => BodyFacts::extract(bytes),
            _ => BodyFacts::none(),
        };
        if let Some(asked) = &asked {
            let d = gate.decide_impersonation(&identity, &attrs, asked, conn.peer.ip());
            if d.is_allowed() {
                acting.user = asked.user_info();
            } else {
                decision = Some(d);
            }
        }
        if decision.is_none() {
            let context = session.as_ref().map(|s| custos_policy::Session {
                id: Some(s.id.clone()),
                intent: s.intent.clone(),
                ticket: s.ticket.clone(),
            });
            decision =
                Some(gate.decide(&identity, &attrs, &facts, conn.peer.ip(), context.as_ref()));
        }
    }
    // The profile policy chose for this caller and resource: what the response is masked with.
    let chosen = gw.masking.choose(decision.as_ref());
    if acting.user.username != identity.user.username {
        hint.exempt.push(acting.user.username.clone());
    }

    // A review may be covered by a grant an earlier approval created (the agent's retry).
    let review = decision.as_ref().filter(|d| d.outcome == Outcome::Review);
    let uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let operation = approve::operation(&attrs, &uri);
    let grant = match review {
        Some(_) => gw
            .approvals
            .grant_for(&identity.user.username, &operation)
            .await
            .map_err(|e| GatewayError::ApprovalsUnavailable(e.to_string()))?,
        None => None,
    };

    // record: the request record (with the decision) is durable before anything reaches the
    // apiserver; no record, no forwarding (503). Denials are recorded the same way.
    let mut record = gw.recorder.request_record(
        audit_id,
        &parts,
        &identity,
        &attrs,
        conn.peer.ip(),
        received,
    );
    if acting.user != identity.user {
        record.impersonated_user = Some(recorder::user_info(&acting));
    }
    record.custos.decision = decision.as_ref().map(decide::decision_record);
    record.custos.session = session.as_ref().map(session::session_ref);
    // The request body as sent, masked strictly (records never hold a secret), and its media type
    // from an allow-list (so a replay sends the same patch type; never the client's raw header).
    if let Buffered::Read(bytes) = &buffered {
        recorder::request_body(&mut record, &gw.masking, &hint, &parts.headers, bytes);
    }
    record.custos.grant = grant.as_ref().map(approve::grant_ref);
    gw.recorder.append(&record).await?;
    let mut facts = RequestFacts { record };

    // approve: a deny is refused with the policy's reason. A review not covered by a grant opens a
    // review (stored and recorded first: fail closed) and holds the request until an approver
    // decides or the policy's hold passes; approved, it goes on with the approval in its record.
    match decision.as_ref().map(|d| d.outcome) {
        Some(Outcome::Deny) => {
            return Err(GatewayError::Denied(
                decision.map(|d| d.message()).unwrap_or_default(),
            ))
        }
        Some(Outcome::Review) if grant.is_none() => {
            let d = decision.as_ref().expect("a review outcome has a decision");
            let requester = approve::person(&identity);
            let mut r = gw.approvals.new_review(
                audit_id,
                requester,
                session.as_ref().map(Session::info),
                operation,
                d,
                facts.record.request_object.clone(),
            );
            // What the change would do: the apiserver's dry run and a diff against the live
            // object, masked (never fails the request: a missing preview is a note).
            let content_type = parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let body = match &buffered {
                Buffered::Read(b) => Some(b),
                Buffered::Stream(_) => None,
            };
            let p = crate::preview::preview(
                gw,
                &crate::preview::PreviewRequest {
                    method: &parts.method,
                    path_and_query: &uri,
                    content_type,
                    body,
                    identity: &identity,
                    attrs: &attrs,
                    hint: &hint,
                    audit_id,
                },
            )
            .await;
            r.preview = p.dry_run;
            r.diff = match (p.diff, p.note) {
                (Some(d), Some(n)) => Some(format!("# {n}\n{d}")),
                (Some(d), None) => Some(d),
                (None, Some(n)) => Some(format!("# {n}")),
                (None, None) => None,
            };
            gw.approvals
                .open(&gw.recorder, &r)
                .await
                .map_err(|e| GatewayError::ApprovalsUnavailable(e.to_string()))?;
            let hold =
                Duration::from_secs(d.review.as_ref().and_then(|r| r.hold_seconds).unwrap_or(0))
                    .min(gw.approvals.settings.max_hold);
            let held = gw
                .approvals
                .hold(&r.id, hold)
                .await
                .map_err(|e| GatewayError::ApprovalsUnavailable(e.to_string()))?;
            match held {
                approve::Held::Approved(r) => {
                    facts.record.custos.approval = Some(approve::approval_ref(&r));
                    gw.approvals.released(&r.id).await;
                }
                approve::Held::Denied(r) => {
                    return Err(GatewayError::Denied(format!(
                        "denied by {} (review {})",
                        r.justification(),
                        r.id
                    )))
                }
                approve::Held::Pending(r) => {
                    return Err(GatewayError::ReviewRequired(format!(
                        "{} — review {} is waiting for a member of {}; follow it with `custos reviews show {}`; once approved, retry",
                        d.message(),
                        r.id,
                        r.approvers.join(", "),
                        r.id
                    )))
                }
            }
        }
        _ => {}
    }
    let identity = acting;

    // forward: as the identity, via impersonation; upgrades are relayed with per-chunk taps. Accept is
    // narrowed to what the masker parses (JSON), compression is declined.
    let head = parts.method == http::Method::HEAD;
    let path = parts.uri.path().to_owned();
    // The OpenAPI schemas are passed as they are (kubectl reads them as protobuf), see mask.rs.
    if !upgrade && !mask::is_schema(&path) {
        mask::negotiate(&mut parts.headers);
    }
    let long_running = custos_kube::request::is_long_running(&attrs);
    let resp = match buffered {
        Buffered::Stream(incoming) if upgrade => {
            let req = Request::from_parts(parts, incoming);
            forward::upgrade(
                gw,
                conn,
                req,
                &identity,
                audit_id,
                stream_kind(&attrs),
                &facts.record,
            )
            .await?
        }
        b => {
            let body = match b {
                Buffered::Read(bytes) => forward::buffered_body(bytes),
                Buffered::Stream(incoming) => {
                    forward::upstream_body(incoming, gw.limits.max_body_bytes)
                }
            };
            let req = Request::from_parts(parts, body);
            if long_running {
                let guard = gw.metrics.stream_opened(stream_kind(&attrs));
                forward::forward(gw, conn, req, &identity, audit_id, true)
                    .await
                    .map(|r| hold_while_streaming(r, guard))?
            } else {
                forward::forward(gw, conn, req, &identity, audit_id, false).await?
            }
        }
    };
    // mask: every response body except a switched protocol (its frames are masked by the relay's
    // taps) streams through the masker; one Custos cannot parse is refused (502), never passed.
    let summary = mask::SharedSummary::default();
    let resp = if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        resp
    } else {
        let ctx = mask::ResponseContext {
            chosen: &chosen,
            hint,
            path: &path,
            // An error answer to a watch or an upgrade is one Status, not a stream.
            streaming: long_running && resp.status().is_success(),
            head,
        };
        mask::response(&gw.masking, ctx, resp, summary.clone()).await?
    };
    // record: the response record (masked body, counts), when the body ends or the client goes away.
    Ok(gw.recorder.on_response(facts, resp, summary))
}

/// The caller, and the agent session when it came with a Custos session token.
async fn authenticate(
    gw: &Gateway,
    conn: &ConnInfo,
    req: &Request<Incoming>,
) -> Result<(Identity, Option<Session>), GatewayError> {
    let bearer = bearer_token(req.headers())?;
    if let Some(token) = bearer.as_deref().filter(|t| session::is_session_token(t)) {
        let (identity, s) = session::authenticate(gw, token).await?;
        return Ok((identity, Some(s)));
    }
    Ok((
        gw.authenticator
            .authenticate(bearer.as_deref(), conn.client_cert.as_deref())
            .await?,
        None,
    ))
}

/// The client's `Audit-ID` if it sent a sane one, else a fresh UUID.
fn audit_id(req: &Request<Incoming>) -> String {
    req.headers()
        .get("audit-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn stream_kind(attrs: &RequestAttributes) -> &str {
    match attrs.subresource.as_str() {
        "exec" | "attach" | "portforward" | "log" | "proxy" => &attrs.subresource,
        _ if attrs.verb == "watch" => "watch",
        _ if attrs.verb == "proxy" => "proxy",
        _ => "upgrade",
    }
}

/// Keeps the open-stream gauge raised until the response body is dropped.
fn hold_while_streaming(
    resp: Response<Body>,
    guard: crate::metrics::StreamGuard,
) -> Response<Body> {
    use http_body_util::BodyExt;
    resp.map(|b| {
        b.map_frame(move |f| {
            let _ = &guard;
            f
        })
        .boxed()
    })
}

fn refusal_reason(e: &GatewayError) -> &'static str {
    match e {
        GatewayError::Unauthenticated(_) => "unauthenticated",
        GatewayError::Sanitize(SanitizeError::MalformedAuthorization) => "unauthenticated",
        GatewayError::Path(_) => "path",
        GatewayError::Sanitize(SanitizeError::Impersonation(_)) => "impersonation",
        GatewayError::Sanitize(_) => "headers",
        GatewayError::Impersonation(_) => "identity",
        GatewayError::BodyTooLarge { .. } => "body_too_large",
        GatewayError::UpstreamUnavailable(_) => "upstream_unavailable",
        GatewayError::AuditUnavailable(_) => "audit_unavailable",
        GatewayError::Denied(_) => "policy_denied",
        GatewayError::ReviewRequired(_) => "policy_review",
        GatewayError::ImpersonationHeaders(_) => "impersonation",
        GatewayError::BodyRead(_) => "body_read",
        GatewayError::Unmaskable(_) => "unmaskable",
        GatewayError::ApprovalsUnavailable(_) => "approvals_unavailable",
        GatewayError::CarriesMaskedValue { .. } => "masked_value",
        GatewayError::Internal(_) => "internal",
    }
}

/// The request body on its way: still streaming from the client, or read (for policy) already.
enum Buffered {
    Stream(Incoming),
    Read(bytes::Bytes),
}
