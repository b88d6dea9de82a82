//! The HTTP front: routing, signatures, request limits, and the documented
//! JSON and XML shapes. Every route's work runs on tokio's blocking pool
//! (it reads the ledger and syncs the state store).
//!
//! | request | answer |
//! |---|---|
//! | `GET /metrics` (unsigned) | Prometheus text |
//! | `POST /` `Action=CreateTopic, ListTopics, GetTopicAttributes, DeleteTopic` | SNS XML |
//! | `PUT, GET, DELETE /topics/NAME`, `GET /topics` | JSON |
//! | `PUT, GET, DELETE /BUCKET?notification[=ID]` | S3 XML |
//! | `PUT, GET, DELETE /notifications/bucket/BUCKET` | JSON |
//! | `PUT, GET, DELETE /subscriptions/NAME`, `GET ?events`, `POST ?ack` | JSON |
//!
//! Log lines name the method, the path and the status, never the query (a
//! push endpoint there may hold a password) or a header.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use serde_json::{json, Value};
use tracing::{debug, info};

use crate::auth::{authenticate, SignedRequest};
use crate::config::User;
use crate::error::ApiError;
use crate::service::{
    push_endpoint_args, shown_endpoint, NotificationSpec, Service, DEFAULT_MAX_ENTRIES,
};
use crate::store::{PushArgs, Subscription, Topic};
use crate::xml;

/// Largest request body.
pub const MAX_BODY: usize = 1 << 20;

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

type Resp = Response<Full<Bytes>>;

fn respond(status: u16, content_type: &str, body: impl Into<Bytes>, rid: &str) -> Resp {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .header("x-amz-request-id", rid)
        .body(Full::new(body.into()))
        .expect("a valid response")
}

/// A query string's pairs, decoded; a key without `=` has an empty value.
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
        Query(
            form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    fn has(&self, k: &str) -> bool {
        self.0.iter().any(|(a, _)| a == k)
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// Refuse parameters outside `allowed`, and any given twice (except `repeat`).
    fn only(&self, allowed: &[&str], repeat: &[&str]) -> Result<(), ApiError> {
        for (i, (k, _)) in self.0.iter().enumerate() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::invalid(format!("unknown parameter {k:?}")));
            }
            if !repeat.contains(&k.as_str()) && self.0[..i].iter().any(|(a, _)| a == k) {
                return Err(ApiError::invalid(format!("parameter {k:?} is given twice")));
            }
        }
        Ok(())
    }
}

/// Push arguments from a query (or SNS attributes): `None` without `push-endpoint`.
fn push_args(get: impl Fn(&str) -> Option<String>) -> Result<Option<PushArgs>, ApiError> {
    let endpoint = get("push-endpoint");
    let exchange = get("amqp-exchange");
    let ack = get("amqp-ack-level");
    let verify = get("verify-ssl");
    let Some(endpoint) = endpoint else {
        if exchange.is_some() || ack.is_some() || verify.is_some() {
            return Err(ApiError::invalid(
                "amqp-exchange, amqp-ack-level and verify-ssl need a push-endpoint",
            ));
        }
        return Ok(None);
    };
    let verify_ssl = match verify.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => return Err(ApiError::invalid("verify-ssl must be true or false")),
    };
    Ok(Some(PushArgs {
        endpoint,
        amqp_exchange: exchange,
        amqp_ack_level: ack,
        verify_ssl,
    }))
}

fn topic_json(svc: &Service, t: &Topic) -> Value {
    let (ep, args) = match &t.push {
        Some(p) => (shown_endpoint(p), push_endpoint_args(p)),
        None => (String::new(), String::new()),
    };
    json!({
        "user": t.user,
        "name": t.name,
        "dest": {
            "bucket_name": "",
            "oid_prefix": "",
            "push_endpoint": ep,
            "push_endpoint_args": args,
        },
        "arn": svc.arn(t),
    })
}

fn sub_json(svc: &Service, s: &Subscription) -> Value {
    let z = &svc.config().zone;
    let (ep, args) = match &s.push {
        Some(p) => (shown_endpoint(p), push_endpoint_args(p)),
        None => (String::new(), String::new()),
    };
    let owner = crate::config::owner_id(&s.tenant, &s.user);
    json!({
        "user": s.user,
        "name": s.name,
        "topic": s.topic,
        "dest": {
            "bucket_name": format!("{}{}-{}", z.data_bucket_prefix, owner, s.topic),
            "oid_prefix": format!("{}{}/", z.data_oid_prefix, s.name),
            "push_endpoint": ep,
            "push_endpoint_args": args,
        },
        "s3_id": s.s3.as_ref().and_then(|n| n.s3_id.clone()).unwrap_or_default(),
    })
}

/// What a routed request answers.
enum Answer {
    Json(Value),
    Raw(&'static str, Vec<u8>),
    Empty,
}

fn route(
    svc: &Service,
    user: &User,
    method: &Method,
    segs: &[String],
    q: &Query,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let seg: Vec<&str> = segs.iter().map(String::as_str).collect();
    match seg.as_slice() {
        ["topics"] => match *method {
            Method::GET => {
                q.only(&[], &[])?;
                let topics: Vec<Value> = svc
                    .list_topics(user)
                    .iter()
                    .map(|t| topic_json(svc, t))
                    .collect();
                Ok(Answer::Json(json!({ "topics": topics })))
            }
            _ => Err(ApiError::method_not_allowed()),
        },
        ["topics", name] => match *method {
            Method::PUT => {
                q.only(
                    &[
                        "push-endpoint",
                        "amqp-exchange",
                        "amqp-ack-level",
                        "verify-ssl",
                    ],
                    &[],
                )?;
                let push = push_args(|k| q.get(k).map(str::to_string))?;
                let t = svc.put_topic(user, name, push)?;
                Ok(Answer::Json(json!({ "arn": svc.arn(&t) })))
            }
            Method::GET => {
                q.only(&[], &[])?;
                let (t, subs) = svc.get_topic(user, name)?;
                Ok(Answer::Json(
                    json!({ "topic": topic_json(svc, &t), "subs": subs }),
                ))
            }
            Method::DELETE => {
                q.only(&[], &[])?;
                svc.delete_topic(user, name)?;
                Ok(Answer::Empty)
            }
            _ => Err(ApiError::method_not_allowed()),
        },
        ["subscriptions", name] => match *method {
            Method::PUT => {
                q.only(
                    &[
                        "topic",
                        "push-endpoint",
                        "amqp-exchange",
                        "amqp-ack-level",
                        "verify-ssl",
                    ],
                    &[],
                )?;
                let topic = q
                    .get("topic")
                    .ok_or_else(|| ApiError::invalid("topic is required"))?;
                let push = push_args(|k| q.get(k).map(str::to_string))?;
                svc.put_subscription(user, name, topic, push)?;
                Ok(Answer::Empty)
            }
            Method::GET if q.has("events") => {
                q.only(&["events", "max-entries", "marker"], &[])?;
                let max = match q.get("max-entries") {
                    None => DEFAULT_MAX_ENTRIES,
                    Some(m) => m
                        .parse::<usize>()
                        .map_err(|_| ApiError::invalid("max-entries must be a whole number"))?,
                };
                let marker = q.get("marker").filter(|m| !m.is_empty());
                let p = svc.pull(user, name, max, marker)?;
                let mut out = Vec::with_capacity(64 + p.events.iter().map(Vec::len).sum::<usize>());
                out.extend_from_slice(b"{\"next_marker\":");
                serde_json::to_writer(&mut out, &p.next_marker).expect("json");
                out.extend_from_slice(format!(",\"is_truncated\":{},", p.is_truncated).as_bytes());
                out.extend_from_slice(if p.s3 {
                    b"\"Records\":["
                } else {
                    b"\"events\":["
                });
                for (i, e) in p.events.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(e);
                }
                out.extend_from_slice(b"]}");
                Ok(Answer::Raw("application/json", out))
            }
            Method::GET => {
                q.only(&[], &[])?;
                Ok(Answer::Json(sub_json(
                    svc,
                    &svc.get_subscription(user, name)?,
                )))
            }
            Method::DELETE => {
                q.only(&[], &[])?;
                svc.delete_subscription(user, name)?;
                Ok(Answer::Empty)
            }
            Method::POST if q.has("ack") => {
                q.only(&["ack", "event-id"], &["event-id"])?;
                svc.ack(user, name, &q.all("event-id"))?;
                Ok(Answer::Empty)
            }
            _ => Err(ApiError::method_not_allowed()),
        },
        ["notifications", "bucket", bucket] => match *method {
            Method::PUT => {
                q.only(&["topic", "events"], &[])?;
                let topic = q
                    .get("topic")
                    .ok_or_else(|| ApiError::invalid("topic is required"))?;
                let events: Vec<String> = match q.get("events") {
                    None => Vec::new(),
                    Some(e) => e.split(',').map(|s| s.trim().to_string()).collect(),
                };
                svc.put_notification(user, bucket, topic, events)?;
                Ok(Answer::Empty)
            }
            Method::DELETE => {
                q.only(&["topic"], &[])?;
                let topic = q
                    .get("topic")
                    .ok_or_else(|| ApiError::invalid("topic is required"))?;
                svc.delete_notification(user, bucket, topic)?;
                Ok(Answer::Empty)
            }
            Method::GET => {
                q.only(&[], &[])?;
                let items: Vec<Value> = svc
                    .list_notifications(user, bucket)?
                    .iter()
                    .map(|(t, n)| json!({ "topic": topic_json(svc, t), "events": n.events }))
                    .collect();
                Ok(Answer::Json(json!({ "topics": items })))
            }
            _ => Err(ApiError::method_not_allowed()),
        },
        [bucket] if q.has("notification") => {
            q.only(&["notification"], &[])?;
            let id = q.get("notification").filter(|i| !i.is_empty());
            match *method {
                Method::PUT => {
                    if id.is_some() {
                        return Err(ApiError::invalid(
                            "PUT ?notification takes no Id: it is in the body",
                        ));
                    }
                    let configs = xml::parse_notification_configuration(body)?;
                    if configs.is_empty() {
                        svc.delete_s3_notifications(user, bucket, None)?;
                        return Ok(Answer::Empty);
                    }
                    let mut specs = Vec::new();
                    for c in configs {
                        let topic = svc.topic_of_arn(user, &c.topic)?;
                        specs.push(NotificationSpec {
                            id: c.id,
                            topic,
                            events: c.events,
                            prefix: c.prefix,
                            suffix: c.suffix,
                        });
                    }
                    svc.put_s3_notifications(user, bucket, specs)?;
                    Ok(Answer::Empty)
                }
                Method::GET => {
                    let ns = svc.get_s3_notifications(user, bucket, id)?;
                    let items: Vec<_> = ns
                        .into_iter()
                        .map(|n| {
                            let arn = svc.arn(&Topic {
                                tenant: n.tenant.clone(),
                                name: n.topic.clone(),
                                user: n.user.clone(),
                                push: None,
                            });
                            (n, arn)
                        })
                        .collect();
                    Ok(Answer::Raw(
                        "application/xml",
                        xml::notification_configuration(&items).into_bytes(),
                    ))
                }
                Method::DELETE => {
                    svc.delete_s3_notifications(user, bucket, id)?;
                    Ok(Answer::Empty)
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        _ => Err(ApiError::invalid("unknown resource")),
    }
}

/// The SNS query-protocol calls of boto3's `sns` client.
fn sns(svc: &Service, user: &User, q: &Query, rid: &str) -> Result<String, ApiError> {
    let action = q
        .get("Action")
        .ok_or_else(|| ApiError::invalid("Action is required"))?;
    let arn = || -> Result<String, ApiError> {
        let a = q
            .get("TopicArn")
            .ok_or_else(|| ApiError::invalid("TopicArn is required"))?;
        svc.topic_of_arn(user, a)
    };
    match action {
        "CreateTopic" => {
            let name = q
                .get("Name")
                .ok_or_else(|| ApiError::invalid("Name is required"))?;
            let mut attrs: Vec<(String, String)> = Vec::new();
            for n in 1.. {
                let k = q.get(&format!("Attributes.entry.{n}.key"));
                let v = q.get(&format!("Attributes.entry.{n}.value"));
                match (k, v) {
                    (Some(k), Some(v)) => {
                        if ![
                            "push-endpoint",
                            "amqp-exchange",
                            "amqp-ack-level",
                            "verify-ssl",
                        ]
                        .contains(&k)
                        {
                            return Err(ApiError::invalid(format!(
                                "unsupported topic attribute {k:?}"
                            )));
                        }
                        attrs.push((k.to_string(), v.to_string()));
                    }
                    (None, None) => break,
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "Attributes.entry.{n} needs a key and a value"
                        )))
                    }
                }
            }
            let push = push_args(|k| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone()))?;
            let t = svc.put_topic(user, name, push)?;
            Ok(xml::sns_response(
                "CreateTopic",
                Some(&format!("<TopicArn>{}</TopicArn>", xml::esc(&svc.arn(&t)))),
                rid,
            ))
        }
        "ListTopics" => {
            let mut inner = String::from("<Topics>");
            for t in svc.list_topics(user) {
                inner.push_str(&format!(
                    "<member><TopicArn>{}</TopicArn></member>",
                    xml::esc(&svc.arn(&t))
                ));
            }
            inner.push_str("</Topics>");
            Ok(xml::sns_response("ListTopics", Some(&inner), rid))
        }
        "GetTopicAttributes" => {
            let name = arn()?;
            let (t, subs) = svc.get_topic(user, &name).map_err(ApiError::from)?;
            let mut attrs = vec![
                ("User", t.user.clone()),
                ("Name", t.name.clone()),
                ("TopicArn", svc.arn(&t)),
                ("SubscriptionsConfirmed", subs.len().to_string()),
            ];
            if let Some(p) = &t.push {
                attrs.push(("EndPoint", shown_endpoint(p)));
                attrs.push(("EndpointArgs", push_endpoint_args(p)));
            }
            let mut inner = String::from("<Attributes>");
            for (k, v) in attrs {
                inner.push_str(&format!(
                    "<entry><key>{k}</key><value>{}</value></entry>",
                    xml::esc(&v)
                ));
            }
            inner.push_str("</Attributes>");
            Ok(xml::sns_response("GetTopicAttributes", Some(&inner), rid))
        }
        "DeleteTopic" => {
            let name = arn()?;
            svc.delete_topic(user, &name).map_err(ApiError::from)?;
            Ok(xml::sns_response("DeleteTopic", None, rid))
        }
        other => Err(ApiError {
            status: 400,
            code: "InvalidAction",
            message: format!("unknown Action {other:?}"),
        }),
    }
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Answer one request: the server's hyper bodies, or any other body (the
/// `pubsub_request` fuzz target sends whole requests through here).
pub async fn handle<B>(svc: Arc<Service>, req: Request<B>) -> Result<Resp, Infallible>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let rid = format!("{:016X}", REQUEST_IDS.fetch_add(1, Ordering::Relaxed));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = answer(svc, req, &rid).await;
    let status = resp.status().as_u16();
    if status >= 500 {
        info!(%method, %path, status, "request failed");
    } else {
        debug!(%method, %path, status, "request");
    }
    Ok(resp)
}

async fn answer<B>(svc: Arc<Service>, req: Request<B>, rid: &str) -> Resp
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let is_sns = raw_path == "/" && method == Method::POST;
    let resource = raw_path.clone();
    let fail = |e: ApiError| -> Resp {
        if is_sns {
            let mut e = e;
            if e.status == 404 {
                e.code = "NotFound";
            }
            respond(e.status, "text/xml", xml::sns_error(&e, rid), rid)
        } else {
            respond(
                e.status,
                "application/xml",
                xml::s3_error(&e, &resource, rid),
                rid,
            )
        }
    };
    if raw_path == "/metrics" && method == Method::GET {
        return respond(
            200,
            "text/plain; version=0.0.4",
            svc.metrics().prometheus_text(),
            rid,
        );
    }
    let too_big = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY as u64);
    if too_big {
        return fail(ApiError::too_large());
    }
    let (parts, body) = req.into_parts();
    let timeout = svc.config().server.request_timeout;
    let body = match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect()).await {
        Err(_) => return fail(ApiError::timeout()),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return fail(ApiError::too_large());
            }
            return fail(ApiError::invalid("the body could not be read"));
        }
        Ok(Ok(b)) => b.to_bytes(),
    };
    let headers: HeaderMap = parts.headers;
    let user = {
        let signed = SignedRequest {
            method: &method,
            raw_path: &raw_path,
            raw_query: &raw_query,
            headers: &headers,
            body: &body,
            now: now_secs(),
        };
        match authenticate(svc.config(), &signed) {
            Ok(u) => u.clone(),
            Err(e) => return fail(e),
        }
    };
    let svc2 = svc.clone();
    let rid2 = rid.to_string();
    let work =
        tokio::task::spawn_blocking(move || -> Result<(u16, &'static str, Vec<u8>), ApiError> {
            if is_sns {
                let mut q = Query::parse(&raw_query);
                let form = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
                if form || q.0.is_empty() {
                    let text = std::str::from_utf8(&body)
                        .map_err(|_| ApiError::invalid("the form body is not UTF-8"))?;
                    q.0.extend(Query::parse(text).0);
                }
                return sns(&svc2, &user, &q, &rid2).map(|x| (200, "text/xml", x.into_bytes()));
            }
            let q = Query::parse(&raw_query);
            let segs: Vec<String> = raw_path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map(|c| c.into_owned())
                        .map_err(|_| ApiError::invalid("the path is not UTF-8"))
                })
                .collect::<Result<_, _>>()?;
            match route(&svc2, &user, &method, &segs, &q, &body)? {
                Answer::Json(v) => Ok((
                    200,
                    "application/json",
                    serde_json::to_vec(&v).expect("json"),
                )),
                Answer::Raw(ct, b) => Ok((200, ct, b)),
                Answer::Empty => Ok((200, "application/json", Vec::new())),
            }
        });
    match work.await {
        Ok(Ok((status, ct, b))) => respond(status, ct, b, rid),
        Ok(Err(e)) => fail(e),
        Err(_) => fail(ApiError::internal()),
    }
}
