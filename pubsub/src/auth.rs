//! S3 request signatures, checked on the server side: version 2
//! (`Authorization: AWS key:signature`, HMAC-SHA1 over the standard string
//! to sign) and version 4 (`AWS4-HMAC-SHA256`, any service name and region).
//!
//! Decisions (ARCHITECTURE.md, "The pub/sub service"):
//! - v2 signs `notification` (and the other S3 sub-resources) but not the
//!   pubsub parameters (`topic`, `events`, `marker`, `push-endpoint`, ...),
//!   as Ceph does. A bucket's sub-resource is accepted signed as
//!   `/bucket?notification` or `/bucket/?notification`, whichever the client
//!   sent, because clients differ.
//! - v4's canonical URI is tried as sent (S3 clients) and encoded once more
//!   (other AWS services, such as boto3's `sns`).
//! - The request time must be within 15 minutes of the server's clock.
//! - Presigned URLs and streaming (chunked) payload signatures are refused.
//!
//! No error text holds a key or a signature.

use axum::http::{HeaderMap, Method};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Config, User};
use crate::error::ApiError;

/// Largest difference between a request's time and the server's clock.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// The S3 sub-resources that version 2 signs (AWS's list; Ceph's is the same
/// for these calls).
const SUBRESOURCES: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// What a signature check needs of a request.
pub struct SignedRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path as sent (percent-encoded).
    pub raw_path: &'a str,
    /// The query as sent (percent-encoded), without `?`.
    pub raw_query: &'a str,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
    /// The server's clock, Unix seconds.
    pub now: i64,
}

/// The user who signed the request, or why it is refused.
pub fn authenticate<'c>(cfg: &'c Config, req: &SignedRequest<'_>) -> Result<&'c User, ApiError> {
    let auth = match req.headers.get("authorization") {
        Some(v) => v
            .to_str()
            .map_err(|_| ApiError::access_denied("the Authorization header is not ASCII"))?,
        None => {
            if req.raw_query.contains("X-Amz-Signature") || req.raw_query.contains("Signature=") {
                return Err(ApiError::access_denied(
                    "presigned URLs are not supported: sign the Authorization header",
                ));
            }
            return Err(ApiError::access_denied("the request is not signed"));
        }
    };
    if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") {
        v4(cfg, req, rest)
    } else if let Some(rest) = auth.strip_prefix("AWS ") {
        v2(cfg, req, rest)
    } else {
        Err(ApiError::access_denied(
            "unsupported Authorization scheme (AWS or AWS4-HMAC-SHA256)",
        ))
    }
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn check_time(t: Option<i64>, now: i64) -> Result<(), ApiError> {
    match t {
        Some(t) if (t - now).abs() <= MAX_SKEW_SECS => Ok(()),
        Some(_) => Err(ApiError::time_skewed()),
        None => Err(ApiError::access_denied(
            "the request has no valid Date or x-amz-date",
        )),
    }
}

/// `20261127T120000Z` or an RFC 1123 date (`Fri, 27 Nov 2026 12:00:00 GMT`).
fn parse_time(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc2822;
    use time::macros::format_description;
    let s = s.trim();
    if let Ok(t) = time::PrimitiveDateTime::parse(
        s,
        format_description!("[year][month][day]T[hour][minute][second]Z"),
    ) {
        return Some(t.assume_utc().unix_timestamp());
    }
    // RFC 1123 with GMT is RFC 2822 with a zone name, which `time` wants as +0000.
    let fixed = s
        .strip_suffix(" GMT")
        .or_else(|| s.strip_suffix(" UTC"))
        .map(|p| format!("{p} +0000"));
    time::OffsetDateTime::parse(fixed.as_deref().unwrap_or(s), &Rfc2822)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn pct_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', "%20"))
        .decode_utf8_lossy()
        .into_owned()
}

/// AWS's URI encoding: unreserved characters kept, everything else `%XX`.
fn aws_encode(s: &str, keep_slash: bool) -> String {
    aws_encode_bytes(s.as_bytes(), keep_slash)
}

fn aws_encode_bytes(s: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_alphanumeric()
            || b == b'-'
            || b == b'_'
            || b == b'.'
            || b == b'~'
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query's pairs, decoded, in order; a key without `=` has value `None`.
fn query_pairs(raw: &str) -> Vec<(String, Option<String>)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (pct_decode(k), Some(pct_decode(v))),
            None => (pct_decode(p), None),
        })
        .collect()
}

fn v2<'c>(cfg: &'c Config, req: &SignedRequest<'_>, rest: &str) -> Result<&'c User, ApiError> {
    let (key, sig) = rest
        .rsplit_once(':')
        .ok_or_else(|| ApiError::access_denied("malformed v2 Authorization header"))?;
    let user = cfg
        .user_by_key(key.trim())
        .ok_or_else(ApiError::invalid_access_key)?;
    let amz_date = req.headers.get("x-amz-date").is_some();
    let date = if amz_date {
        ""
    } else {
        header(req.headers, "date")
    };
    let t = if amz_date {
        parse_time(header(req.headers, "x-amz-date"))
    } else {
        parse_time(date)
    };
    check_time(t, req.now)?;
    // x-amz-* headers: lower-case names, sorted, values of a name joined by `,`.
    let mut amz: Vec<(String, String)> = Vec::new();
    for (name, value) in req.headers {
        let n = name.as_str();
        if n.starts_with("x-amz-") {
            let v = value.to_str().unwrap_or("").trim().to_string();
            match amz.iter_mut().find(|(k, _)| k == n) {
                Some((_, old)) => {
                    old.push(',');
                    old.push_str(&v);
                }
                None => amz.push((n.to_string(), v)),
            }
        }
    }
    amz.sort();
    let mut sub: Vec<(String, Option<String>)> = query_pairs(req.raw_query)
        .into_iter()
        .filter(|(k, _)| SUBRESOURCES.contains(&k.as_str()))
        .collect();
    sub.sort();
    let subres = sub
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect::<Vec<_>>()
        .join("&");
    let mut head = format!(
        "{}\n{}\n{}\n{}\n",
        req.method.as_str(),
        header(req.headers, "content-md5"),
        header(req.headers, "content-type"),
        date
    );
    for (k, v) in &amz {
        head.push_str(&format!("{k}:{v}\n"));
    }
    let mut paths = vec![req.raw_path.to_string()];
    // The bucket's sub-resource, signed with or without the slash after the bucket.
    let trimmed = req.raw_path.trim_end_matches('/');
    if !subres.is_empty() && trimmed.len() > 1 && !trimmed[1..].contains('/') {
        paths.push(if req.raw_path.ends_with('/') {
            trimmed.to_string()
        } else {
            format!("{trimmed}/")
        });
    }
    let given = base64_decode(sig.trim()).ok_or_else(ApiError::signature_mismatch)?;
    for p in paths {
        let resource = if subres.is_empty() {
            p
        } else {
            format!("{p}?{subres}")
        };
        let string_to_sign = format!("{head}{resource}");
        let mut mac = Hmac::<Sha1>::new_from_slice(user.secret_key.expose().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(string_to_sign.as_bytes());
        let want = mac.finalize().into_bytes();
        if bool::from(want.as_slice().ct_eq(&given)) {
            return Ok(user);
        }
    }
    Err(ApiError::signature_mismatch())
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn hmac256(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn v4<'c>(cfg: &'c Config, req: &SignedRequest<'_>, rest: &str) -> Result<&'c User, ApiError> {
    let bad = || ApiError::access_denied("malformed AWS4-HMAC-SHA256 Authorization header");
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (credential, signed_headers, signature) = match (credential, signed_headers, signature) {
        (Some(c), Some(h), Some(s)) => (c, h, s),
        _ => return Err(bad()),
    };
    let scope_parts: Vec<&str> = credential.split('/').collect();
    if scope_parts.len() != 5 || scope_parts[4] != "aws4_request" {
        return Err(bad());
    }
    let (key, date, region, service) = (
        scope_parts[0],
        scope_parts[1],
        scope_parts[2],
        scope_parts[3],
    );
    let user = cfg
        .user_by_key(key)
        .ok_or_else(ApiError::invalid_access_key)?;
    let amz_date = match req.headers.get("x-amz-date") {
        Some(v) => v.to_str().unwrap_or("").to_string(),
        None => header(req.headers, "date").to_string(),
    };
    check_time(parse_time(&amz_date), req.now)?;
    if !amz_date.starts_with(date) || date.len() != 8 {
        return Err(ApiError::access_denied(
            "the credential's date is not the request's date",
        ));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") {
        return Err(ApiError::access_denied("the host header must be signed"));
    }
    let mut canon_headers = String::new();
    for n in &names {
        let values: Vec<String> = req
            .headers
            .get_all(*n)
            .iter()
            .map(|v| {
                v.to_str()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        canon_headers.push_str(&format!("{n}:{}\n", values.join(",")));
    }
    let body_hash = hex::encode(Sha256::digest(req.body));
    let payload = match req.headers.get("x-amz-content-sha256") {
        Some(v) => {
            let v = v.to_str().unwrap_or("");
            if v.starts_with("STREAMING-") {
                return Err(ApiError::access_denied(
                    "streaming payload signatures are not supported",
                ));
            }
            if v != "UNSIGNED-PAYLOAD" && !v.eq_ignore_ascii_case(&body_hash) {
                return Err(ApiError::signature_mismatch());
            }
            v.to_string()
        }
        None => body_hash,
    };
    let mut q: Vec<(String, String)> = query_pairs(req.raw_query)
        .into_iter()
        .map(|(k, v)| {
            (
                aws_encode(&k, false),
                aws_encode(&v.unwrap_or_default(), false),
            )
        })
        .collect();
    q.sort();
    let canon_query = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let k_date = hmac256(format!("AWS4{}", user.secret_key.expose()).as_bytes(), date);
    let k_region = hmac256(&k_date, region);
    let k_service = hmac256(&k_region, service);
    let k_signing = hmac256(&k_service, "aws4_request");
    let given = hex::decode(signature).map_err(|_| ApiError::signature_mismatch())?;
    // As sent (S3 clients), normalised to one encoding, and the sent path
    // encoded once more (what SigV4 does for services other than S3).
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(req.raw_path).collect();
    let mut uris = vec![
        req.raw_path.to_string(),
        aws_encode_bytes(&decoded, true),
        aws_encode(req.raw_path, true),
    ];
    uris.dedup();
    for uri in uris {
        let canonical = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            req.method.as_str(),
            if uri.is_empty() { "/" } else { &uri },
            canon_query,
            canon_headers,
            signed_headers,
            payload
        );
        let sts = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let want = hmac256(&k_signing, &sts);
        if bool::from(want.as_slice().ct_eq(&given)) {
            return Ok(user);
        }
    }
    Err(ApiError::signature_mismatch())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::from_toml(
            "[[users]]\nuid='alice'\naccess_key='AKIAIOSFODNN7EXAMPLE'\nsecret_key='wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'\n",
        )
        .unwrap()
    }

    #[test]
    fn v2_matches_the_aws_documentation_example() {
        // AWS's "Signing and authenticating REST requests" example (GET object).
        let mut h = HeaderMap::new();
        h.insert("host", "johnsmith.s3.amazonaws.com".parse().unwrap());
        h.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        h.insert(
            "authorization",
            "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU="
                .parse()
                .unwrap(),
        );
        let c = cfg();
        let now = parse_time("Tue, 27 Mar 2007 19:36:42 +0000").unwrap();
        let req = SignedRequest {
            method: &Method::GET,
            raw_path: "/johnsmith/photos/puppy.jpg",
            raw_query: "",
            headers: &h,
            body: b"",
            now,
        };
        assert_eq!(authenticate(&c, &req).unwrap().uid, "alice");
        let late = SignedRequest {
            now: now + 3600,
            ..req
        };
        assert_eq!(
            authenticate(&c, &late).unwrap_err().code,
            "RequestTimeTooSkewed"
        );
    }

    #[test]
    fn v4_matches_the_aws_documentation_example() {
        // AWS's SigV4 "GET object" example (Range header, empty payload).
        let mut h = HeaderMap::new();
        h.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        h.insert("range", "bytes=0-9".parse().unwrap());
        h.insert(
            "x-amz-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse()
                .unwrap(),
        );
        h.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        h.insert("authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41".parse().unwrap());
        let c = cfg();
        let now = parse_time("20130524T000000Z").unwrap();
        let req = SignedRequest {
            method: &Method::GET,
            raw_path: "/test.txt",
            raw_query: "",
            headers: &h,
            body: b"",
            now,
        };
        assert_eq!(authenticate(&c, &req).unwrap().uid, "alice");
        let other = SignedRequest {
            raw_path: "/test2.txt",
            ..req
        };
        assert_eq!(
            authenticate(&c, &other).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
    }

    #[test]
    fn unsigned_and_unknown_keys_are_refused() {
        let c = cfg();
        let mut h = HeaderMap::new();
        let req = SignedRequest {
            method: &Method::GET,
            raw_path: "/topics",
            raw_query: "",
            headers: &h,
            body: b"",
            now: 0,
        };
        assert_eq!(authenticate(&c, &req).unwrap_err().code, "AccessDenied");
        h.insert("authorization", "AWS NOBODY:abc=".parse().unwrap());
        let req = SignedRequest {
            method: &Method::GET,
            raw_path: "/topics",
            raw_query: "",
            headers: &h,
            body: b"",
            now: 0,
        };
        let e = authenticate(&c, &req).unwrap_err();
        assert_eq!(e.code, "InvalidAccessKeyId");
        assert!(!e.message.contains("NOBODY"));
    }
}
