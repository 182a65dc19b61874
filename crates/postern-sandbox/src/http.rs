//! The HTTP front door: one endpoint for every service, routed as AWS clients address them, plus
//! a small unsigned admin API under `/_sandbox/` (loopback only, like everything else).
//!
//! Routing: the service is the one in the SigV4 credential scope; unsigned requests are routed by
//! `X-Amz-Target` (JSON services) or by their `Action` (STS and EC2 action names), so they get
//! the right service's "missing authentication" error.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};

use crate::auth;
use crate::services::{self, Call};
use crate::shared::Shared;
use crate::sigv4::{Authorization, ReceivedRequest};
use crate::trail;
use crate::wire::query::Params;
use crate::wire::{AwsError, Service, respond};

/// The largest request body accepted; AWS's query APIs refuse larger ones too.
pub const MAX_BODY: usize = 1024 * 1024;

/// The router serving every service and the admin API.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/v1/data-channel/{session_id}",
            axum::routing::get(crate::agent::connect),
        )
        .fallback(handle)
        .with_state(shared)
}

const STS_ACTIONS: &[&str] = &[
    "AssumeRole",
    "GetCallerIdentity",
    "GetSessionToken",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "DecodeAuthorizationMessage",
    "GetAccessKeyInfo",
    "GetFederationToken",
];

/// Which service an unsigned (or unparseable) request was meant for.
fn guess_service(headers: &HeaderMap, params: &Params) -> Service {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        if target.starts_with("AmazonSSM.") {
            return Service::Ssm;
        }
        if target.contains("CloudTrail_20131101.") {
            return Service::CloudTrail;
        }
    }
    match params.get("Action") {
        Some(action) if STS_ACTIONS.contains(&action) => Service::Sts,
        Some(_) => Service::Ec2,
        None if headers.contains_key("x-amz-target") => Service::Ssm,
        None => Service::Sts,
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    if uri.path().starts_with("/_sandbox/") {
        if !shared.admin() {
            return (StatusCode::NOT_FOUND, "the admin API is off").into_response();
        }
        return crate::admin::handle(&shared, &method, uri.path(), body).await;
    }
    shared.world().requests += 1;
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let service = guess_service(&headers, &Params::default());
            return AwsError::new(
                "RequestEntityTooLarge",
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body must be at most {MAX_BODY} bytes"),
            )
            .into_response(service, &request_id);
        }
    };
    let source_ip = peer.ip().to_string();
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let request = Request {
        method,
        uri,
        headers,
        body,
        request_id,
        source_ip,
        user_agent,
    };
    // Injected latency, before the call is served (without holding the world).
    let action = request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next().map(str::to_owned))
        .or_else(|| request.query_params().get("Action").map(str::to_owned));
    let delay = action
        .as_deref()
        .and_then(|a| shared.world().throttles.latency.get(a).copied());
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let (service, result) = dispatch(&shared, &request);
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            tracing::info!(
                service = service.signing_name(),
                code = %error.code,
                status = error.status.as_u16(),
                "refused"
            );
            error.into_response(service, &request.request_id)
        }
    };
    // AWS clients correct their signing clock by the server's Date header, so it must follow the
    // sandbox clock, not the system's (hyper would otherwise add the system time).
    let now = shared.world().now();
    if let Ok(date) = http::HeaderValue::from_str(&http_date(now)) {
        response.headers_mut().insert(http::header::DATE, date);
    }
    response
}

/// RFC 7231 `Date`: `Wed, 25 Nov 2026 13:00:00 GMT`.
fn http_date(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.format(format).unwrap_or_default()
}

/// One request, read in full.
struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    request_id: String,
    source_ip: String,
    user_agent: String,
}

impl Request {
    /// The form parameters of a query request: the body, then the URL query.
    fn query_params(&self) -> Params {
        let mut params = Params::parse(&self.body);
        if let Some(query) = self.uri.query() {
            params.merge(Params::parse(query.as_bytes()));
        }
        params
    }
}

fn dispatch(shared: &Shared, request: &Request) -> (Service, Result<Response, AwsError>) {
    let authorization = Authorization::from_headers(&request.headers);
    let is_json = request.headers.contains_key("x-amz-target");
    let params = if is_json {
        Params::default()
    } else {
        request.query_params()
    };
    let service = match &authorization {
        Ok(auth) => match Service::from_signing_name(&auth.service) {
            Some(service) => service,
            None => {
                let guessed = guess_service(&request.headers, &params);
                return (
                    guessed,
                    Err(AwsError::bad_request(
                        "InvalidService",
                        format!(
                            "postern-sandbox does not serve the service '{}' (it serves sts, ec2, ssm and cloudtrail)",
                            auth.service
                        ),
                    )),
                );
            }
        },
        Err(_) => guess_service(&request.headers, &params),
    };
    if request.method != Method::POST && request.method != Method::GET {
        return (
            service,
            Err(AwsError::new(
                "MethodNotAllowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "Use POST (or GET for query APIs)",
            )),
        );
    }
    let path_and_query = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let received = ReceivedRequest {
        method: request.method.as_str(),
        path_and_query,
        headers: &request.headers,
        body: &request.body,
    };
    let mut world = shared.world();
    let caller = match auth::authenticate(&world, authorization.as_ref(), &received) {
        Ok(caller) => caller,
        Err(failure) => return (service, Err(failure.into_error(service))),
    };
    let region = authorization
        .as_ref()
        .map(|a| a.region.clone())
        .unwrap_or_default();
    let call = Call {
        caller: &caller,
        region: &region,
        request_id: &request.request_id,
        source_ip: &request.source_ip,
        user_agent: &request.user_agent,
    };
    let operation = match service {
        Service::Sts | Service::Ec2 => params.get("Action").map(str::to_owned),
        Service::Ssm | Service::CloudTrail => json_operation(service, &request.headers)
            .ok()
            .map(str::to_owned),
    };
    if let Some(action) = &operation
        && let Err(throttled) =
            world
                .throttles
                .take(service, caller.principal.account(), &region, action)
    {
        return (service, Err(throttled));
    }
    let result = match service {
        Service::Sts => services::sts::handle(&mut world, &call, &params)
            .map(|xml| respond(StatusCode::OK, "text/xml", xml, &request.request_id)),
        Service::Ec2 => services::ec2::handle(&mut world, &call, &params).map(|xml| {
            respond(
                StatusCode::OK,
                "text/xml;charset=UTF-8",
                xml,
                &request.request_id,
            )
        }),
        Service::Ssm | Service::CloudTrail => {
            json_operation(service, &request.headers).and_then(|operation| {
                let body = crate::wire::json::Body::parse(&request.body)?;
                let answer = match service {
                    Service::Ssm => services::ssm::handle(&mut world, &call, operation, &body),
                    _ => services::cloudtrail::handle(&mut world, &call, operation, &body),
                }?;
                Ok(respond(
                    StatusCode::OK,
                    "application/x-amz-json-1.1",
                    answer.to_string(),
                    &request.request_id,
                ))
            })
        }
    };
    // Audited calls that fail after authentication are recorded too, as CloudTrail records them.
    if let (Err(error), Some(name)) = (
        &result,
        operation
            .as_deref()
            .and_then(|op| trail::audited(service, op)),
    ) {
        let request_parameters = match service {
            Service::Sts => trail::sts_request(name, &params),
            _ => crate::wire::json::Body::parse(&request.body)
                .map_or(serde_json::Value::Null, |body| {
                    trail::ssm_request(name, &body)
                }),
        };
        trail::record(
            &mut world,
            &call,
            trail::Outcome {
                name,
                service,
                request: request_parameters,
                response: None,
                error: Some(error.clone()),
                resources: Vec::new(),
                also_in: None,
            },
        );
    }
    if result.is_ok() {
        tracing::info!(
            service = service.signing_name(),
            action = params.get("Action").unwrap_or(""),
            caller = %caller.principal.arn(),
            "served"
        );
    }
    (service, result)
}

/// The operation a JSON request names in `X-Amz-Target` (`AmazonSSM.StartSession` → `StartSession`).
fn json_operation(service: Service, headers: &HeaderMap) -> Result<&str, AwsError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    service
        .target_prefixes()
        .iter()
        .find_map(|prefix| target.strip_prefix(prefix))
        .filter(|op| !op.is_empty())
        .ok_or_else(|| AwsError::bad_request("UnknownOperationException", ""))
}
