//! Reading the change log back, without a ledger: every record whose op
//! time is in `[from, to)`, in seq order, or one net change per object.
//!
//! Every object under the prefix is read (op times may go backwards across
//! producers, so a key's time does not bound its records), and a record
//! that two objects carry (windows re-planned after a lost state file) is
//! returned once, by its `(seq, sub)`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::ObjectStore;
use serde_json::{json, Value};

use crate::config::{Config, RecordFormat};
use crate::error::{Error, Result};
use crate::uploader::{scrubber, store};
use crate::window::BODY_VERSION;

/// One change-log object, decoded.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its key.
    pub key: String,
    /// Its body.
    pub body: Value,
}

/// What the fetch functions call as they read objects: `(read, total)`,
/// first with `read` 0 once the listing is done (what a progress bar shows).
pub type Progress<'a> = &'a mut (dyn FnMut(usize, usize) + Send);

/// Every change-log object under the config's prefix, in key order.
pub async fn objects(cfg: &Config) -> Result<Vec<Object>> {
    objects_observed(cfg, &mut |_, _| {}).await
}

/// [`objects`], telling `progress` how many are read.
pub async fn objects_observed(cfg: &Config, progress: Progress<'_>) -> Result<Vec<Object>> {
    let s = store(cfg)?;
    let scrub = scrubber(cfg);
    let prefix = (!cfg.dest.prefix.is_empty()).then(|| ObjPath::from(cfg.dest.prefix.as_str()));
    let mut metas: Vec<_> = s
        .list(prefix.as_ref())
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| Error::Store(scrub.scrub(&e.to_string())))?;
    metas.retain(|m| m.location.as_ref().ends_with(".json.gz"));
    metas.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
    let mut out = Vec::with_capacity(metas.len());
    let total = metas.len();
    progress(0, total);
    for (i, m) in metas.into_iter().enumerate() {
        let bytes = s
            .get(&m.location)
            .await
            .map_err(|e| Error::Store(scrub.scrub(&e.to_string())))?
            .bytes()
            .await
            .map_err(|e| Error::Store(scrub.scrub(&e.to_string())))?;
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut text)
            .map_err(|e| Error::Corrupt(format!("{}: not gzip: {e}", m.location)))?;
        let body: Value = serde_json::from_slice(&text)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", m.location)))?;
        if body.get("version").and_then(Value::as_u64) != Some(u64::from(BODY_VERSION)) {
            return Err(Error::Corrupt(format!(
                "{}: not a version {BODY_VERSION} change-log object",
                m.location
            )));
        }
        out.push(Object {
            key: m.location.to_string(),
            body,
        });
        progress(i + 1, total);
    }
    Ok(out)
}

/// A record's op time (µs) and `(seq, sub)`.
fn time_and_position(v: &Value, format: RecordFormat) -> Option<(i64, (u64, u64))> {
    match format {
        RecordFormat::Native => Some((
            v.get("time_us")?.as_i64()?,
            (
                v.get("seq")?.as_u64()?,
                v.get("sub").and_then(Value::as_u64).unwrap_or(0),
            ),
        )),
        RecordFormat::S3 => {
            let t = fsfeed::op::parse_time_us(v.get("eventTime")?.as_str()?)?;
            let d = v.get("fsfeedEventData")?;
            Some((t, (d.get("seq")?.as_u64()?, d.get("sub")?.as_u64()?)))
        }
    }
}

/// Every record of the change log, deduplicated by `(seq, sub)`, in seq
/// order, with its op time.
pub async fn all_records(cfg: &Config) -> Result<Vec<(i64, Value)>> {
    all_records_observed(cfg, &mut |_, _| {}).await
}

async fn all_records_observed(cfg: &Config, progress: Progress<'_>) -> Result<Vec<(i64, Value)>> {
    let mut by_pos: BTreeMap<(u64, u64), (i64, Value)> = BTreeMap::new();
    for o in objects_observed(cfg, progress).await? {
        let recs = o
            .body
            .get("records")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Corrupt(format!("{}: no records", o.key)))?;
        for r in recs {
            let (t, pos) = time_and_position(r, cfg.format).ok_or_else(|| {
                Error::Corrupt(format!(
                    "{}: a record without time or seq (format {:?}?)",
                    o.key, cfg.format
                ))
            })?;
            by_pos.insert(pos, (t, r.clone()));
        }
    }
    Ok(by_pos.into_values().collect())
}

/// Every record with op time in `[from_us, to_us)`.
pub async fn fetch(cfg: &Config, from_us: i64, to_us: i64) -> Result<Vec<Value>> {
    rows_observed(cfg, from_us, to_us, false, &mut |_, _| {}).await
}

async fn fetch_observed(
    cfg: &Config,
    from_us: i64,
    to_us: i64,
    progress: Progress<'_>,
) -> Result<Vec<Value>> {
    Ok(all_records_observed(cfg, progress)
        .await?
        .into_iter()
        .filter(|(t, _)| *t >= from_us && *t < to_us)
        .map(|(_, v)| v)
        .collect())
}

/// [`net`] when `net`, else [`fetch`]: what `changelog fetch [--net]` prints.
pub async fn rows(cfg: &Config, from_us: i64, to_us: i64, net: bool) -> Result<Vec<Value>> {
    rows_observed(cfg, from_us, to_us, net, &mut |_, _| {}).await
}

/// [`rows`], telling `progress` how many objects are read.
pub async fn rows_observed(
    cfg: &Config,
    from_us: i64,
    to_us: i64,
    net: bool,
    progress: Progress<'_>,
) -> Result<Vec<Value>> {
    if to_us < from_us {
        return Err(Error::Config("--to is before --from".into()));
    }
    if net {
        net_observed(cfg, from_us, to_us, progress).await
    } else {
        fetch_observed(cfg, from_us, to_us, progress).await
    }
}

/// What a record does to an object: it is there after it (`true`) or not.
fn effects(v: &Value, format: RecordFormat) -> Vec<(String, String, bool, Option<String>)> {
    let s = |x: Option<&Value>| x.and_then(Value::as_str).unwrap_or("").to_string();
    match format {
        RecordFormat::Native => {
            let bucket = s(v.get("bucket"));
            // A directory's object is its `dir/` marker.
            let marker = |k: String, dir: Option<&Value>| {
                if dir.and_then(Value::as_bool) == Some(true) && !k.ends_with('/') {
                    k + "/"
                } else {
                    k
                }
            };
            if let Some(x) = v.get("expanded") {
                let present = x.get("action").and_then(Value::as_str) == Some("create");
                return vec![(
                    bucket,
                    marker(s(x.get("key")), x.get("is_dir")),
                    present,
                    None,
                )];
            }
            let key = marker(s(v.get("key")), v.get("is_dir"));
            match v.get("kind").and_then(Value::as_str).unwrap_or("") {
                "delete" => vec![(bucket, key, false, None)],
                "rename" => vec![
                    (bucket.clone(), key.clone(), false, None),
                    (
                        bucket,
                        marker(s(v.get("to_key")), v.get("is_dir")),
                        true,
                        Some(key),
                    ),
                ],
                "create_file" | "volume_create" | "volume_delete" | "bucket_create"
                | "bucket_delete" => vec![],
                _ => vec![(bucket, key, true, None)],
            }
        }
        RecordFormat::S3 => {
            let name = s(v.get("eventName"));
            let bucket = s(v.pointer("/s3/bucket/name"));
            let key = v
                .pointer("/fsfeedEventData/rawKey")
                .or_else(|| v.pointer("/s3/object/key"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if name.starts_with("ObjectRemoved") {
                vec![(bucket, key, false, None)]
            } else if name.starts_with("ObjectCreated") {
                vec![(bucket, key, true, None)]
            } else {
                vec![]
            }
        }
    }
}

/// One net change per object over `[from_us, to_us)`: `NEW`, `MODIFY`,
/// `DELETE`, or `RENAME` (with `from_key`), as `fsfeed changes` writes
/// them. Whether an object existed at `from` is what the change log says
/// before it (an object it never saw counts as absent).
pub async fn net(cfg: &Config, from_us: i64, to_us: i64) -> Result<Vec<Value>> {
    rows_observed(cfg, from_us, to_us, true, &mut |_, _| {}).await
}

async fn net_observed(
    cfg: &Config,
    from_us: i64,
    to_us: i64,
    progress: Progress<'_>,
) -> Result<Vec<Value>> {
    let all = all_records_observed(cfg, progress).await?;
    let mut before: HashMap<(String, String), bool> = HashMap::new();
    let mut after: BTreeMap<(String, String), (bool, Option<String>)> = BTreeMap::new();
    for (t, v) in &all {
        if *t >= to_us {
            continue;
        }
        for (b, k, present, from) in effects(v, cfg.format) {
            if *t < from_us {
                before.insert((b, k), present);
            } else {
                let e = after.entry((b, k)).or_insert((false, None));
                e.0 = present;
                if from.is_some() {
                    e.1 = from;
                }
            }
        }
    }
    let mut renamed_away: Vec<(String, String)> = Vec::new();
    let mut rows = Vec::new();
    for ((b, k), (present, from)) in &after {
        let was = before
            .get(&(b.clone(), k.clone()))
            .copied()
            .unwrap_or(false);
        let from_existed = from.as_ref().is_some_and(|f| {
            before
                .get(&(b.clone(), f.clone()))
                .copied()
                .unwrap_or(false)
        });
        let row = match (was, present, from_existed) {
            (false, true, true) => {
                renamed_away.push((b.clone(), from.clone().unwrap_or_default()));
                Some(json!({"change": "RENAME", "bucket": b, "key": k, "from_key": from}))
            }
            (false, true, false) => Some(json!({"change": "NEW", "bucket": b, "key": k})),
            (true, true, _) => Some(json!({"change": "MODIFY", "bucket": b, "key": k})),
            (true, false, _) => Some(json!({"change": "DELETE", "bucket": b, "key": k})),
            (false, false, _) => None,
        };
        rows.extend(row);
    }
    rows.retain(|r| {
        !(r["change"] == "DELETE"
            && renamed_away
                .iter()
                .any(|(b, k)| r["bucket"] == *b && r["key"] == *k))
    });
    Ok(rows)
}
