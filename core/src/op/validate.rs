//! Validation: every rule an op must meet before anything is written.

use std::net::IpAddr;

use super::*;
use crate::error::{Error, Result};

fn bad(index: usize, reason: impl Into<String>) -> Error {
    Error::InvalidOp {
        index,
        reason: reason.into(),
    }
}

/// Check a key (or rename target) for the given layout.
pub fn validate_key(key: &str, layout: Layout, index: usize) -> Result<()> {
    let err = |reason: String| Error::InvalidKey { index, reason };
    if key.is_empty() {
        return Err(err("key is empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(err(format!(
            "key is {} bytes, the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    // In FSO, one pass over the bytes for NUL and the segments (a scan
    // for NUL, then a split on `/`, cost more). The errors keep their
    // order: NUL, then a leading `/`, then the first bad segment.
    let bytes = key.as_bytes();
    if layout != Layout::Fso {
        // `memchr`, many bytes at a time.
        if bytes.contains(&0) {
            return Err(err("key holds a NUL byte".into()));
        }
        return Ok(());
    }
    let mut seg = 0;
    let mut bad_segment = None;
    for (i, &c) in bytes.iter().enumerate() {
        if c == 0 {
            return Err(err("key holds a NUL byte".into()));
        }
        if c == b'/' {
            if bad_segment.is_none() {
                bad_segment = check_segment(&bytes[seg..i]).err();
            }
            seg = i + 1;
        }
    }
    if key.starts_with('/') {
        return Err(err("FSO key starts with `/`".into()));
    }
    match bad_segment.or_else(|| check_segment(&bytes[seg..]).err()) {
        Some(reason) => Err(err(reason)),
        None => Ok(()),
    }
}

/// One segment of an FSO key (between `/`s).
fn check_segment(seg: &[u8]) -> std::result::Result<(), String> {
    match seg {
        b"" => Err("FSO key has an empty segment".into()),
        b"." | b".." => Err(format!(
            "FSO key has a `{}` segment",
            String::from_utf8_lossy(seg)
        )),
        _ => Ok(()),
    }
}

fn validate_name(what: &str, name: &str, index: usize) -> Result<()> {
    if name.is_empty() {
        return Err(bad(index, format!("`{what}` is required")));
    }
    if name.len() > MAX_NAME_BYTES || name.bytes().any(|c| c == 0 || c == b'/') {
        return Err(bad(
            index,
            format!("`{what}` must be 1..={MAX_NAME_BYTES} bytes without `/` or NUL"),
        ));
    }
    Ok(())
}

fn validate_acls(acls: &[Acl], index: usize, allow_empty: bool) -> Result<()> {
    if acls.is_empty() && !allow_empty {
        return Err(bad(index, "`acls` needs at least one entry"));
    }
    for a in acls {
        if !ACL_TYPES.contains(&a.r#type.as_str()) {
            return Err(bad(index, format!("unknown ACL type {:?}", a.r#type)));
        }
        if let Some(r) = a.rights.iter().find(|r| !ACL_RIGHTS.contains(&r.as_str())) {
            return Err(bad(index, format!("unknown ACL right {r:?}")));
        }
        if !ACL_SCOPES.contains(&a.scope.as_str()) {
            return Err(bad(index, format!("unknown ACL scope {:?}", a.scope)));
        }
    }
    Ok(())
}

fn validate_perms(perms: Option<u32>, index: usize) -> Result<()> {
    match perms {
        Some(p) if p > 0o7777 => Err(bad(index, format!("perms {p} is over 0o7777 (4095)"))),
        _ => Ok(()),
    }
}

/// A plain IPv4 address (`d.d.d.d`, each 0 to 255 without a leading
/// zero): a check that `IpAddr`'s parser would accept it, a fifth of its
/// cost (that parser was 5% of an object-store append). It accepts only
/// what the parser accepts (test `dotted_quads_are_what_std_parses`);
/// whatever it does not, the parser decides.
fn dotted_quad(s: &[u8]) -> bool {
    let mut i = 0;
    for octet in 0..4 {
        let start = i;
        let mut v = 0u32;
        while i < s.len() && i - start < 3 && s[i].is_ascii_digit() {
            v = v * 10 + u32::from(s[i] - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || v > 255 || (len > 1 && s[start] == b'0') {
            return false;
        }
        if octet < 3 {
            if s.get(i) != Some(&b'.') {
                return false;
            }
            i += 1;
        }
    }
    i == s.len()
}

/// The longest `source` an op may name.
pub const MAX_SOURCE_BYTES: usize = 64;

/// Stateless validation of one op: everything that can be checked without
/// the ledger. `index` is the op's place in its batch, used in the error.
pub fn validate(op: &Op, index: usize) -> Result<()> {
    let kind = op
        .kind
        .as_ref()
        .ok_or_else(|| bad(index, "op has no kind"))?;
    if op.time_us <= 0 {
        return Err(bad(
            index,
            "`time_us` must be > 0 (microseconds since the epoch)",
        ));
    }
    if Layout::try_from(op.layout).is_err() {
        return Err(bad(index, format!("unknown layout number {}", op.layout)));
    }
    if !op.source_ip.is_empty()
        && !dotted_quad(op.source_ip.as_bytes())
        && op.source_ip.parse::<IpAddr>().is_err()
    {
        return Err(bad(
            index,
            format!("`source_ip` {:?} is not an IP address", op.source_ip),
        ));
    }
    if op.source.len() > MAX_SOURCE_BYTES || op.source.contains('\0') {
        return Err(bad(
            index,
            format!("`source` must be at most {MAX_SOURCE_BYTES} bytes without NUL"),
        ));
    }
    match kind {
        Kind::VolumeCreate(_) | Kind::VolumeDelete(_) => {
            validate_name("volume", &op.volume, index)?;
            if !op.bucket.is_empty() || !op.key.is_empty() {
                return Err(bad(index, "volume ops take no `bucket` or `key`"));
            }
            return Ok(());
        }
        Kind::BucketCreate(_) | Kind::BucketDelete(_) => {
            if !op.volume.is_empty() {
                validate_name("volume", &op.volume, index)?;
            }
            validate_name("bucket", &op.bucket, index)?;
            if !op.key.is_empty() {
                return Err(bad(index, "bucket ops take no `key`"));
            }
            return Ok(());
        }
        _ => {}
    }
    if !op.volume.is_empty() {
        validate_name("volume", &op.volume, index)?;
    }
    validate_name("bucket", &op.bucket, index)?;
    let layout = op.layout_enum();
    match (op.key.is_empty(), op.parent_id) {
        (false, None) => {
            validate_key(&op.key, layout, index)?;
            if !op.name.is_empty() {
                return Err(bad(index, "`name` goes with `parent_id`, not with `key`"));
            }
        }
        (true, Some(_)) => {
            if layout != Layout::Fso {
                return Err(bad(index, "`parent_id` + `name` need the FSO layout"));
            }
            validate_name("name", &op.name, index).map_err(|_| Error::InvalidKey {
                index,
                reason: "`name` must be one non-empty path segment".into(),
            })?;
            if op.name == "." || op.name == ".." {
                return Err(Error::InvalidKey {
                    index,
                    reason: format!("`name` {:?} is not allowed", op.name),
                });
            }
        }
        (false, Some(_)) => return Err(bad(index, "give `key` or `parent_id` + `name`, not both")),
        (true, None) => {
            return Err(Error::InvalidKey {
                index,
                reason: "key is empty".into(),
            })
        }
    }
    match kind {
        Kind::CreateFile(c) => validate_perms(c.perms, index)?,
        Kind::CreateDirectory(c) => validate_perms(c.perms, index)?,
        Kind::Commit(c) if !c.method.is_empty() && !COMMIT_METHODS.contains(&c.method.as_str()) => {
            return Err(bad(
                index,
                format!(
                    "unknown commit method {:?} ({})",
                    c.method,
                    COMMIT_METHODS.join(", ")
                ),
            ));
        }
        Kind::Rename(r) => match (r.to_key.is_empty(), r.to_parent_id) {
            (false, None) => {
                validate_key(&r.to_key, layout, index)?;
                if !r.to_name.is_empty() {
                    return Err(bad(index, "`to_name` goes with `to_parent_id`"));
                }
                if op.parent_id.is_none() && r.to_key == op.key {
                    return Err(Error::RenameToSelf { index });
                }
            }
            (true, Some(to_parent)) => {
                if layout != Layout::Fso {
                    return Err(bad(index, "`to_parent_id` + `to_name` need the FSO layout"));
                }
                validate_name("to_name", &r.to_name, index).map_err(|_| Error::InvalidKey {
                    index,
                    reason: "`to_name` must be one non-empty path segment".into(),
                })?;
                if op.parent_id == Some(to_parent) && r.to_name == op.name {
                    return Err(Error::RenameToSelf { index });
                }
            }
            (false, Some(_)) => {
                return Err(bad(
                    index,
                    "give `to_key` or `to_parent_id` + `to_name`, not both",
                ))
            }
            (true, None) => return Err(bad(index, "rename needs `to_key`")),
        },
        Kind::AclAdd(a) | Kind::AclRemove(a) => validate_acls(&a.acls, index, false)?,
        Kind::AclSet(a) => validate_acls(&a.acls, index, true)?,
        Kind::SetTimes(t) if t.mtime.is_none() && t.atime.is_none() => {
            return Err(bad(index, "set_times needs `mtime` or `atime`"));
        }
        Kind::SetAttr(s) => {
            let groups = [
                s.replication.is_some(),
                s.owner.is_some() || s.group.is_some(),
                s.perms.is_some(),
                !s.xattrs.is_empty() || !s.xattrs_removed.is_empty(),
            ];
            if groups.iter().filter(|g| **g).count() != 1 {
                return Err(bad(
                    index,
                    "set_attr sets exactly one of: replication; owner/group; perms; xattrs/xattrs_removed",
                ));
            }
            validate_perms(s.perms, index)?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(key: &str, layout: Layout) -> Option<String> {
        match validate_key(key, layout, 3) {
            Ok(()) => None,
            Err(Error::InvalidKey { index: 3, reason }) => Some(reason),
            Err(e) => panic!("{key:?}: {e}"),
        }
    }

    #[test]
    fn dotted_quads_are_what_std_parses() {
        let std_v4 = |s: &str| s.parse::<std::net::Ipv4Addr>().is_ok();
        // Every string of up to 8 bytes over digits that matter and dots.
        let alphabet = b"01259.";
        let mut accepted = 0;
        let mut buf = Vec::new();
        for len in 0..=8u32 {
            for mut n in 0..alphabet.len().pow(len) {
                buf.clear();
                for _ in 0..len {
                    buf.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                let s = std::str::from_utf8(&buf).unwrap();
                let ours = dotted_quad(&buf);
                assert!(!ours || std_v4(s), "{s:?}");
                accepted += usize::from(ours);
                // Only plain dotted quads fall back to the parser without
                // need: here ours decides exactly as std does.
                assert_eq!(ours, std_v4(s), "{s:?}");
            }
        }
        assert!(accepted > 1000, "{accepted}");
        for s in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "192.168.1.254",
            "1.22.133.4",
        ] {
            assert!(dotted_quad(s.as_bytes()), "{s}");
        }
        for s in [
            "256.0.0.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3.4",
            "1.2.3.4.5",
            "1..2.3",
            "1234.1.1.1",
            "1.2.3.04",
            "::1",
            "1.2.3.4 ",
            "",
            "a.b.c.d",
            "1.2.3.-4",
        ] {
            assert!(!dotted_quad(s.as_bytes()), "{s}");
        }
        // What it leaves to the parser is still checked there.
        let op = |ip: &str| Op {
            source_ip: ip.into(),
            ..crate::workload::Workload::new(1, 1_767_225_600_000_000)
                .next()
                .unwrap()
        };
        assert!(validate(&op("::1"), 0).is_ok());
        assert!(validate(&op("fe80::1:2"), 0).is_ok());
        assert!(validate(&op("10.0.0.1"), 0).is_ok());
        for bad in ["01.2.3.4", "256.1.1.1", "1.2.3", "nowhere"] {
            assert!(validate(&op(bad), 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_and_the_first_error_of_each() {
        use Layout::*;
        for ok in ["a", "a/b", "a/b/c.txt", "...", "a/.../b", ".a/b.", "é/ü"] {
            assert_eq!(reason(ok, Fso), None, "{ok:?}");
        }
        // Object-store keys may hold any of what FSO refuses but NUL.
        for ok in ["/a", "a//b", "a/./b", "a/../b", "a/", ".", ".."] {
            assert_eq!(reason(ok, Obs), None, "{ok:?}");
            assert_eq!(reason(ok, Legacy), None, "{ok:?}");
        }
        let cases = [
            ("", Fso, "key is empty"),
            ("a\0b", Obs, "key holds a NUL byte"),
            // NUL comes first, wherever it is.
            ("/a//.\0", Fso, "key holds a NUL byte"),
            ("/a", Fso, "FSO key starts with `/`"),
            ("/a//b", Fso, "FSO key starts with `/`"),
            ("a//b", Fso, "FSO key has an empty segment"),
            ("a/", Fso, "FSO key has an empty segment"),
            ("a/b/", Fso, "FSO key has an empty segment"),
            (".", Fso, "FSO key has a `.` segment"),
            ("a/./b", Fso, "FSO key has a `.` segment"),
            ("a/..", Fso, "FSO key has a `..` segment"),
            // The first bad segment is the one named.
            ("a/../b//c", Fso, "FSO key has a `..` segment"),
            ("a//b/../c", Fso, "FSO key has an empty segment"),
        ];
        for (key, layout, want) in cases {
            assert_eq!(reason(key, layout).as_deref(), Some(want), "{key:?}");
        }
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(reason(&long, Obs).unwrap().contains("the limit is"));
        assert_eq!(reason(&long[1..], Obs), None);
    }
}
