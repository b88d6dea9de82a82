//! HTTP webhook: one POST per message. The body is the framed batch (an S3
//! `{"Records":[..]}` envelope or JSON lines) or, with `http_per_record`,
//! one record. Headers: `Content-Type`, `X-Fsfeed-Event-Id` and
//! `X-Fsfeed-Last-Event-Id` (the first and last record's event ids),
//! `X-Fsfeed-Records`, and for one record `X-Fsfeed-Event-Name` and
//! `X-Fsfeed-Seq`; then the configured `http_headers`, basic auth from the
//! URI's user info, and `Authorization: Bearer` from `http_bearer_token`.
//!
//! A 2xx is the acknowledgement. A 5xx, 408, 429, a timeout or a refused
//! connection is retried; a redirect or any other 4xx parks the publisher
//! (redirects are not followed: a POST must not turn into a GET elsewhere).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, StatusCode};

use super::{chain, content_type, Message};
use crate::config::PublisherConfig;
use crate::error::{Error, Result, SendError};
use crate::secret::{Endpoint, Secret};

/// The webhook transport.
pub struct Http {
    client: Client,
    endpoint: Endpoint,
    content_type: &'static str,
    basic: Option<(String, Option<Secret>)>,
}

impl Http {
    /// A client for the publisher's endpoint (no I/O yet).
    pub fn new(cfg: &PublisherConfig) -> Result<Http> {
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.http_headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Error::Config(format!("http_headers: {k:?} is not a header name")))?;
            let mut value = HeaderValue::from_str(v.expose()).map_err(|_| {
                Error::Config(format!(
                    "http_headers: the value of {k:?} is not a valid header value"
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(t) = &cfg.http_bearer_token {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", t.expose())).map_err(|_| {
                Error::Config("http_bearer_token is not a valid header value".into())
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let client = Client::builder()
            .default_headers(headers)
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(!cfg.verify_tls)
            .user_agent(concat!("fsfeed/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("http client: {}", chain(&e.without_url()))))?;
        let basic = cfg
            .endpoint
            .user()
            .map(|u| (u.to_string(), cfg.endpoint.password().cloned()));
        Ok(Http {
            client,
            endpoint: cfg.endpoint.clone(),
            content_type: content_type(cfg.framing, cfg.per_record),
            basic,
        })
    }

    /// POST each message in order; stop at the first that is not acknowledged.
    pub async fn send(&mut self, messages: &[Message]) -> std::result::Result<(), SendError> {
        for m in messages {
            self.post(m).await?;
        }
        Ok(())
    }

    async fn post(&self, m: &Message) -> std::result::Result<(), SendError> {
        let mut req = self
            .client
            .post(self.endpoint.url().clone())
            .header(CONTENT_TYPE, self.content_type)
            .header("x-fsfeed-event-id", &m.event_id)
            .header("x-fsfeed-last-event-id", &m.last_event_id)
            .header("x-fsfeed-records", m.records)
            .body(m.payload.clone());
        if let Some(n) = m.event_name {
            req = req
                .header("x-fsfeed-event-name", n)
                .header("x-fsfeed-seq", m.seq);
        }
        if let Some((u, p)) = &self.basic {
            req = req.basic_auth(u, p.as_ref().map(Secret::expose));
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(SendError::retry(format!(
                    "POST {}: {}",
                    self.endpoint,
                    chain(&e.without_url())
                )))
            }
        };
        let status = resp.status();
        if status.is_success() {
            // Read the body so the connection can be reused.
            let _ = resp.bytes().await;
            return Ok(());
        }
        let msg = format!("POST {}: HTTP {status}", self.endpoint);
        if retryable(status) {
            Err(SendError::retry(msg))
        } else {
            Err(SendError::permanent(msg))
        }
    }
}

/// 5xx, 408 and 429 are worth another try; the rest is a rejection.
fn retryable(s: StatusCode) -> bool {
    s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_statuses_are_retried() {
        for s in [500, 502, 503, 504, 408, 429] {
            assert!(retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [301, 302, 400, 401, 403, 404, 410, 413, 422] {
            assert!(!retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
