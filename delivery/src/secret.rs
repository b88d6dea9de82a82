//! Secrets: passwords in endpoint URIs, bearer tokens, header values. They
//! never reach a log line, a status file or an error message: their `Debug`
//! and `Display` print `***`, endpoints print without their password, and
//! every error text a publisher keeps passes through [`Scrubber::scrub`].

use std::fmt;

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::error::{Error, Result};

/// What a redacted value prints as.
pub const REDACTED: &str = "***";

/// A string that prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Which transport an endpoint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://` or `https://`: a webhook.
    Http,
    /// `amqp://` or `amqps://`: AMQP 0.9.1.
    Amqp,
    /// `kafka://`: a Kafka-protocol broker.
    Kafka,
}

/// A push endpoint in Ceph's URI form,
/// `http[s]|amqp[s]|kafka://[user:password@]host[:port][/path]`. The
/// password is kept apart; the endpoint prints with `***` in its place.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URI without user info.
    url: Url,
    user: Option<String>,
    password: Option<Secret>,
    scheme: Scheme,
}

impl Endpoint {
    /// Parse an endpoint URI. A scheme other than http, https, amqp, amqps or
    /// kafka, or a URI without a host, is `invalid_config` (the message
    /// never quotes the password).
    pub fn parse(text: &str) -> Result<Endpoint> {
        let mut url = Url::parse(text).map_err(|e| {
            Error::Config(format!(
                "endpoint {} does not parse: {e}",
                redact_uri_text(text)
            ))
        })?;
        let scheme = match url.scheme() {
            "http" | "https" => Scheme::Http,
            "amqp" | "amqps" => Scheme::Amqp,
            "kafka" => Scheme::Kafka,
            other => {
                return Err(Error::Config(format!(
                    "endpoint scheme {other:?} is not http, https, amqp, amqps or kafka"
                )))
            }
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::Config(format!(
                "endpoint {} has no host",
                redact_uri_text(text)
            )));
        }
        let user = (!url.username().is_empty()).then(|| decode(url.username()));
        let password = url.password().map(|p| Secret::new(decode(p)));
        // Both setters only fail for URIs that cannot have user info, which
        // these schemes with a host always can.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(Endpoint {
            url,
            user,
            password,
            scheme,
        })
    }

    /// The transport.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The URI without user info.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The user of the user info.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The password of the user info.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// `host:port`, with the scheme's default port when the URI has none.
    pub fn host_port(&self, default_port: u16) -> String {
        let host = self.url.host_str().unwrap_or_default();
        let port = self.url.port().unwrap_or(default_port);
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}

impl fmt::Display for Endpoint {
    /// The URI with the user kept and the password as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.url.clone();
        if let Some(u) = &self.user {
            let _ = shown.set_username(u);
        }
        if self.password.is_some() {
            let _ = shown.set_password(Some(REDACTED));
        }
        f.write_str(shown.as_str())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Endpoint, D::Error> {
        let s = String::deserialize(d)?;
        Endpoint::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A URI text that did not parse, with anything between `://` and the last
/// `@` of its authority replaced: the error that quotes it stays clean.
fn redact_uri_text(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_string();
    };
    let rest = &text[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}{REDACTED}@{}", &text[..start], &rest[at + 1..]),
        None => text.to_string(),
    }
}

/// Removes known secret values from text (an error from a client library
/// that might quote a URI or a header).
#[derive(Clone, Default)]
pub struct Scrubber {
    secrets: Vec<String>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

impl Scrubber {
    /// Remember a secret (empty values are ignored: they would match everywhere).
    pub fn add(&mut self, secret: &Secret) {
        let v = secret.expose();
        if !v.is_empty() && !self.secrets.iter().any(|s| s == v) {
            self.secrets.push(v.to_string());
            // The URI-encoded form a library might print.
            let enc: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            for e in [enc.replace('+', "%20"), enc] {
                if e != v && !self.secrets.contains(&e) {
                    self.secrets.push(e);
                }
            }
        }
        // Longest first, so a secret holding another is replaced whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `text` with every secret replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_hides_its_password() {
        let e = Endpoint::parse("amqp://alice:s3cr%40t@127.0.0.1:5672/prod").unwrap();
        assert_eq!(e.scheme(), Scheme::Amqp);
        assert_eq!(e.user(), Some("alice"));
        assert_eq!(e.password().unwrap().expose(), "s3cr@t");
        assert_eq!(e.to_string(), "amqp://alice:***@127.0.0.1:5672/prod");
        assert!(!format!("{e:?}").contains("s3cr"));
        assert_eq!(e.url().as_str(), "amqp://127.0.0.1:5672/prod");
        assert_eq!(e.host_port(1), "127.0.0.1:5672");
    }

    #[test]
    fn bad_endpoints_are_config_errors_without_the_password() {
        for bad in [
            "ftp://u:hunter2@host/",
            "not a uri",
            "http://u:hunter2@:80/",
            "kafka://u:hunter2@",
        ] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_config", "{bad}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn scrubber_replaces_plain_and_encoded_forms() {
        let mut s = Scrubber::default();
        s.add(&Secret::new("p@ss word"));
        s.add(&Secret::new(""));
        let t = s.scrub("connect p@ss word failed; url p%40ss+word, p%40ss%20word");
        assert_eq!(t, "connect *** failed; url ***, ***");
    }
}
