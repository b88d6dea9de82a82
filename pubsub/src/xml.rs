//! XML: the S3 `NotificationConfiguration` (read and written), S3 error
//! bodies, and the SNS query-protocol answers that boto3's `sns` client parses.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::ApiError;
use crate::store::Notification;

/// One `TopicConfiguration`, as parsed (not yet checked against topics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfiguration {
    /// `Id`.
    pub id: String,
    /// `Topic` (an ARN).
    pub topic: String,
    /// `Event`s.
    pub events: Vec<String>,
    /// `Filter/S3Key` `prefix` rule.
    pub prefix: Option<String>,
    /// `Filter/S3Key` `suffix` rule.
    pub suffix: Option<String>,
}

/// Escape text for XML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// Parse a `NotificationConfiguration` body.
pub fn parse_notification_configuration(body: &[u8]) -> Result<Vec<TopicConfiguration>, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::malformed_xml("the body is not UTF-8"))?;
    let mut r = Reader::from_str(text);
    r.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut out: Vec<TopicConfiguration> = Vec::new();
    let mut cur: Option<TopicConfiguration> = None;
    let mut rule: (Option<String>, Option<String>) = (None, None);
    let mut text_buf = String::new();
    let mut root_seen = false;
    loop {
        let ev = r
            .read_event()
            .map_err(|e| ApiError::malformed_xml(format!("the XML does not parse: {e}")))?;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let depth = path.len();
                match (depth, name.as_str()) {
                    (0, "NotificationConfiguration") => root_seen = true,
                    (0, other) => {
                        return Err(ApiError::malformed_xml(format!(
                            "the root element is {other}, not NotificationConfiguration"
                        )))
                    }
                    (1, "TopicConfiguration") => cur = Some(TopicConfiguration::default()),
                    (
                        1,
                        "QueueConfiguration"
                        | "CloudFunctionConfiguration"
                        | "EventBridgeConfiguration",
                    ) => {
                        return Err(ApiError::invalid(format!(
                            "{name} is not supported: use TopicConfiguration"
                        )))
                    }
                    (2, "Id" | "Topic" | "Event" | "Filter") => {}
                    (3, "S3Key") if path[2] == "Filter" => {}
                    (3, "S3Metadata" | "S3Tags") if path[2] == "Filter" => {
                        return Err(ApiError::invalid(format!(
                            "{name} filters are not supported"
                        )))
                    }
                    (4, "FilterRule") if path[3] == "S3Key" => rule = (None, None),
                    (5, "Name" | "Value") if path[4] == "FilterRule" => {}
                    _ => {
                        return Err(ApiError::malformed_xml(format!(
                            "unexpected element {name} in {}",
                            path.join("/")
                        )))
                    }
                }
                path.push(name);
                text_buf.clear();
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match (path.len(), name.as_str()) {
                    (0, "NotificationConfiguration") => {
                        root_seen = true;
                    }
                    (2, "Filter") | (3, "S3Key") => {}
                    (5, "Value") => rule.1 = Some(String::new()),
                    _ => {
                        return Err(ApiError::malformed_xml(format!(
                            "unexpected empty element {name}"
                        )))
                    }
                }
            }
            Event::Text(t) => {
                let s = t
                    .decode()
                    .map_err(|e| ApiError::malformed_xml(format!("bad text: {e}")))?;
                text_buf.push_str(&s);
            }
            Event::GeneralRef(g) => {
                let name = String::from_utf8_lossy(&g).into_owned();
                let resolved = match name.as_str() {
                    "amp" => "&".to_string(),
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "quot" => "\"".to_string(),
                    "apos" => "'".to_string(),
                    n if n.starts_with('#') => {
                        let code = if let Some(h) = n.strip_prefix("#x") {
                            u32::from_str_radix(h, 16).ok()
                        } else {
                            n[1..].parse().ok()
                        };
                        code.and_then(char::from_u32)
                            .map(String::from)
                            .ok_or_else(|| ApiError::malformed_xml("bad character reference"))?
                    }
                    _ => return Err(ApiError::malformed_xml(format!("unknown entity &{name};"))),
                };
                text_buf.push_str(&resolved);
            }
            Event::CData(c) => text_buf.push_str(&String::from_utf8_lossy(&c)),
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let value = std::mem::take(&mut text_buf);
                match (path.len(), name.as_str()) {
                    (1, "TopicConfiguration") => {
                        let c = cur.take().unwrap_or_default();
                        if c.id.is_empty() {
                            return Err(ApiError::invalid("a TopicConfiguration has no Id"));
                        }
                        if c.topic.is_empty() {
                            return Err(ApiError::invalid(format!(
                                "TopicConfiguration {:?} has no Topic",
                                c.id
                            )));
                        }
                        out.push(c);
                    }
                    (2, field) => {
                        if let Some(c) = cur.as_mut() {
                            match field {
                                "Id" => c.id = value,
                                "Topic" => c.topic = value,
                                "Event" => c.events.push(value),
                                _ => {}
                            }
                        }
                    }
                    (5, "Name") => rule.0 = Some(value),
                    (5, "Value") => rule.1 = Some(value),
                    (4, "FilterRule") => {
                        let c = cur.as_mut().ok_or_else(|| {
                            ApiError::malformed_xml("FilterRule outside TopicConfiguration")
                        })?;
                        let (n, v) = std::mem::take(&mut rule);
                        let n = n.ok_or_else(|| ApiError::invalid("a FilterRule has no Name"))?;
                        let v = v.ok_or_else(|| ApiError::invalid("a FilterRule has no Value"))?;
                        let slot = match n.to_ascii_lowercase().as_str() {
                            "prefix" => &mut c.prefix,
                            "suffix" => &mut c.suffix,
                            _ => {
                                return Err(ApiError::invalid(format!(
                                    "FilterRule Name {n:?} is not prefix or suffix"
                                )))
                            }
                        };
                        if slot.is_some() {
                            return Err(ApiError::invalid(format!("FilterRule {n} appears twice")));
                        }
                        *slot = Some(v);
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !root_seen || !path.is_empty() {
        return Err(ApiError::malformed_xml(
            "the body is not a complete NotificationConfiguration",
        ));
    }
    Ok(out)
}

/// A `NotificationConfiguration` of these notifications, with the topic ARN of each.
pub fn notification_configuration(items: &[(Notification, String)]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    for (n, arn) in items {
        s.push_str("<TopicConfiguration>");
        s.push_str(&format!(
            "<Id>{}</Id><Topic>{}</Topic>",
            esc(n.s3_id.as_deref().unwrap_or("")),
            esc(arn)
        ));
        for e in &n.events {
            s.push_str(&format!("<Event>{}</Event>", esc(e)));
        }
        if n.prefix.is_some() || n.suffix.is_some() {
            s.push_str("<Filter><S3Key>");
            if let Some(p) = &n.prefix {
                s.push_str(&format!(
                    "<FilterRule><Name>prefix</Name><Value>{}</Value></FilterRule>",
                    esc(p)
                ));
            }
            if let Some(p) = &n.suffix {
                s.push_str(&format!(
                    "<FilterRule><Name>suffix</Name><Value>{}</Value></FilterRule>",
                    esc(p)
                ));
            }
            s.push_str("</S3Key></Filter>");
        }
        s.push_str("</TopicConfiguration>");
    }
    s.push_str("</NotificationConfiguration>");
    s
}

/// An S3 error body.
pub fn s3_error(e: &ApiError, resource: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId></Error>",
        e.code,
        esc(&e.message),
        esc(resource),
        request_id
    )
}

const SNS_NS: &str = "https://sns.amazonaws.com/doc/2010-03-31/";

/// An SNS query-protocol answer: `<ActionResponse><ActionResult>inner</ActionResult>...`.
pub fn sns_response(action: &str, inner: Option<&str>, request_id: &str) -> String {
    let result = match inner {
        Some(i) => format!("<{action}Result>{i}</{action}Result>"),
        None => String::new(),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{SNS_NS}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    )
}

/// An SNS query-protocol error.
pub fn sns_error(e: &ApiError, request_id: &str) -> String {
    let kind = if e.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{SNS_NS}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        e.code,
        esc(&e.message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_boto3_sends() {
        let body = br#"<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TopicConfiguration><Id>n1</Id><Topic>arn:aws:sns:default::t</Topic><Event>s3:ObjectCreated:*</Event><Event>s3:ObjectRemoved:Delete</Event><Filter><S3Key><FilterRule><Name>prefix</Name><Value>a&amp;b/</Value></FilterRule><FilterRule><Name>Suffix</Name><Value>.jpg</Value></FilterRule></S3Key></Filter></TopicConfiguration></NotificationConfiguration>"#;
        let c = parse_notification_configuration(body).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].id, "n1");
        assert_eq!(
            c[0].events,
            vec!["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"]
        );
        assert_eq!(c[0].prefix.as_deref(), Some("a&b/"));
        assert_eq!(c[0].suffix.as_deref(), Some(".jpg"));
    }

    #[test]
    fn bad_bodies_are_400() {
        for b in [
            &b"<NotificationConfiguration><TopicConfiguration><Id>x</Id>"[..],
            b"not xml at all <",
            b"<Other/>",
            b"<NotificationConfiguration><QueueConfiguration/></NotificationConfiguration>",
            b"<NotificationConfiguration><TopicConfiguration><Topic>a</Topic></TopicConfiguration></NotificationConfiguration>",
            b"<NotificationConfiguration><TopicConfiguration><Id>x</Id><Topic>a</Topic><Filter><S3Key><FilterRule><Name>regex</Name><Value>x</Value></FilterRule></S3Key></Filter></TopicConfiguration></NotificationConfiguration>",
            b"<NotificationConfiguration><TopicConfiguration><Id>x</Id><Topic>a</Topic><Bogus/></TopicConfiguration></NotificationConfiguration>",
            b"\xff\xfe",
        ] {
            let e = parse_notification_configuration(b).unwrap_err();
            assert_eq!(e.status, 400, "{}", String::from_utf8_lossy(b));
        }
        assert!(
            parse_notification_configuration(b"<NotificationConfiguration/>")
                .unwrap()
                .is_empty()
        );
    }
}
