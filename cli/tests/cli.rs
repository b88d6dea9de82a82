//! The `fsfeed` command line, run as a user runs it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const T0: i64 = 1_767_225_600_000_000;

fn fsfeed(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fsfeed"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str], stdin: &str) -> String {
    let out = fsfeed(args, stdin);
    assert!(
        out.status.success(),
        "fsfeed {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ops(from: u64, n: u64) -> String {
    (from..from + n)
        .map(|i| {
            format!(
                r#"{{"kind":"commit","volume":"v","bucket":"b","key":"dir/f{i}","size":{i},"etag":"e","time_us":{}}}"#,
                T0 + i as i64 * 1000
            ) + "\n"
        })
        .collect()
}

fn ledger(dir: &Path) -> String {
    dir.join("l").to_str().unwrap().to_string()
}

#[test]
fn init_append_tail_stats() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l, "--max-events", "100"], "");
    let out: Value = serde_json::from_str(&ok(&["append", "--ledger", &l], &ops(0, 5))).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"first_seq": 1, "last_seq": 5, "count": 5})
    );
    let recs = lines(&ok(&["tail", "--ledger", &l, "--from", "earliest"], ""));
    assert_eq!(recs.len(), 5);
    assert_eq!(recs[0]["seq"], 1);
    assert_eq!(recs[4]["key"], "dir/f4");
    let recs = lines(&ok(
        &["tail", "--ledger", &l, "--from", "3", "--max", "1"],
        "",
    ));
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["seq"], 3);
    let recs = lines(&ok(
        &["tail", "--ledger", &l, "--prefix", "dir/f", "--suffix", "2"],
        "",
    ));
    assert_eq!(recs.len(), 1);
    let recs = lines(&ok(
        &["tail", "--ledger", &l, "--from", "2026-01-01T00:00:00.003Z"],
        "",
    ));
    assert_eq!(recs[0]["seq"], 4);
    let stats: Value = serde_json::from_str(&ok(&["stats", "--ledger", &l, "--json"], "")).unwrap();
    assert_eq!(stats["first_seq"], 1);
    assert_eq!(stats["head_seq"], 5);
    assert_eq!(stats["events"], 5);
    assert!(stats["bytes"].as_u64().unwrap() > 0);
    assert_eq!(stats["retention"]["max_events"], 100);
    assert_eq!(stats["cursors"], serde_json::json!([]));
    // Segments: on for a new ledger, 65,536 seqs each, none sealed yet.
    assert_eq!(
        stats["segments"],
        serde_json::json!({"enabled": true, "rows": 65536, "sealed_seq": 0})
    );
}

#[test]
fn init_no_segments_is_stored_and_segments_turns_them_back_on() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    let stats = |l: &str| -> Value {
        serde_json::from_str(&ok(&["stats", "--ledger", l, "--json"], "")).unwrap()
    };
    ok(&["init", "--ledger", &l, "--no-segments"], "");
    assert_eq!(stats(&l)["segments"]["enabled"], false);
    // A later init that says nothing keeps it.
    ok(&["init", "--ledger", &l], "");
    assert_eq!(stats(&l)["segments"]["enabled"], false);
    ok(&["init", "--ledger", &l, "--segments"], "");
    assert_eq!(stats(&l)["segments"]["enabled"], true);
    // Both at once: a usage error that changes nothing.
    let out = fsfeed(&["init", "--ledger", &l, "--segments", "--no-segments"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-segments"));
    assert_eq!(stats(&l)["segments"]["enabled"], true);
}

#[test]
fn a_named_cursor_commits_and_is_shown_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    ok(&["append", "--ledger", &l], &ops(0, 10));
    let recs = lines(&ok(
        &[
            "tail", "--ledger", &l, "--cursor", "etl", "--commit", "--max", "4",
        ],
        "",
    ));
    assert_eq!(recs.len(), 4);
    let recs = lines(&ok(
        &[
            "tail", "--ledger", &l, "--cursor", "etl", "--commit", "--max", "2",
        ],
        "",
    ));
    assert_eq!(recs[0]["seq"], 5, "resumed after the committed position");
    let stats: Value = serde_json::from_str(&ok(&["stats", "--ledger", &l, "--json"], "")).unwrap();
    assert_eq!(stats["cursors"][0]["name"], "etl");
    assert_eq!(stats["cursors"][0]["position"]["seq"], 7);
    assert_eq!(stats["cursors"][0]["lag"], 4);
    let list: Value =
        serde_json::from_str(&ok(&["cursors", "--ledger", &l, "--json"], "")).unwrap();
    assert_eq!(list[0]["store"], "reader");
    let del: Value =
        serde_json::from_str(&ok(&["cursors", "--ledger", &l, "--delete", "etl"], "")).unwrap();
    assert_eq!(del["found"], true);
}

#[test]
fn a_bad_line_names_the_line_and_writes_nothing_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    let mut input = ops(0, 3);
    input.push_str("{\"kind\":\"commit\",\"bucket\":\"b\",\"key\":\"\",\"time_us\":5}\n");
    let out = fsfeed(&["append", "--ledger", &l], &input);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[invalid_key]"), "{err}");
    assert!(err.contains(" 4:"), "names line 4: {err}");
    let stats: Value = serde_json::from_str(&ok(&["stats", "--ledger", &l, "--json"], "")).unwrap();
    assert_eq!(stats["head_seq"], 0);
    // A txid going back is reported on its own line number.
    let input = format!(
        "{}\n{}\n",
        r#"{"kind":"delete","bucket":"b","key":"a","txid":5,"time_us":1767225600000000}"#,
        r#"{"kind":"delete","bucket":"b","key":"c","txid":4,"time_us":1767225600000000}"#
    );
    let out = fsfeed(&["append", "--ledger", &l], &input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[txid_not_increasing]") && err.contains(" 2 "),
        "{err}"
    );
    for (args, code) in [
        (
            vec!["append", "--ledger", &l, "--durability", "fast"],
            "invalid_argument",
        ),
        (
            vec!["tail", "--ledger", &l, "--format", "xml"],
            "invalid_argument",
        ),
        (
            vec!["tail", "--ledger", &l, "--from", "soon"],
            "invalid_argument",
        ),
        (
            vec!["stats", "--ledger", "/nonexistent/ledger"],
            "ledger_not_found",
        ),
    ] {
        let out = fsfeed(&args, "");
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("error[{code}]")),
            "{args:?}"
        );
    }
    let out = fsfeed(
        &["append", "--ledger", &ledger(&dir.path().join("none"))],
        &ops(0, 1),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[ledger_not_found]"));
}

/// One op of bucket `v/b` in `layout` as `fsfeed append` reads it: `body`
/// holds the kind and the key.
fn op_line(layout: &str, body: &str) -> String {
    format!(
        r#"{{"volume":"v","bucket":"b","layout":"{layout}","time_us":1767225600000000,{body}}}"#
    )
}

#[test]
fn a_delete_below_a_directory_renamed_away_is_path_gone_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    let line = |body: &str| op_line("fso", body);
    let input = [
        line(r#""kind":"create_file","key":"d/f""#),
        line(r#""kind":"rename","key":"d","to_key":"e","is_dir":true"#),
        line(r#""kind":"delete","key":"d/f""#),
    ]
    .join("\n");
    let out = fsfeed(&["append", "--ledger", &l], &input);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[path_gone]"), "{err}");
    assert!(
        err.contains("\"d\" was deleted or renamed away at seq 2"),
        "{err}"
    );
    assert!(err.contains(" 3)"), "names line 3: {err}");
    let stats: Value = serde_json::from_str(&ok(&["stats", "--ledger", &l, "--json"], "")).unwrap();
    assert_eq!(stats["head_seq"], 0);
}

#[test]
fn an_fso_bucket_made_again_after_its_delete_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    let line = |body: &str| op_line("fso", body);
    let input = [
        line(r#""kind":"create_file","key":"d/f""#),
        line(r#""kind":"create_file","key":"g""#),
        line(r#""kind":"bucket_delete""#),
        line(r#""kind":"bucket_create""#),
        // Refused as already_exists while the delete left the tree behind.
        line(r#""kind":"create_file","key":"d/f""#),
    ]
    .join("\n");
    ok(&["append", "--ledger", &l], &input);
    // `g` went with the bucket at seq 3.
    let out = fsfeed(
        &["append", "--ledger", &l],
        &line(r#""kind":"delete","key":"g""#),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[path_gone]"), "{err}");
    assert!(
        err.contains("\"g\" was deleted or renamed away at seq 3"),
        "{err}"
    );
    let stats: Value = serde_json::from_str(&ok(&["stats", "--ledger", &l, "--json"], "")).unwrap();
    assert_eq!(stats["head_seq"], 5);
}

#[test]
fn object_store_buckets_resync_and_fill_acl_records_from_the_live_index() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l, "--max-events", "2"], "");
    let line = |body: &str| op_line("obs", body);
    let input = [
        line(r#""kind":"commit","key":"a","size":5,"etag":"e1""#),
        line(r#""kind":"commit","key":"b","size":6,"etag":"e2""#),
        line(r#""kind":"acl_set","key":"a","acls":[{"type":"user","name":"u","rights":["read"]}]"#),
    ]
    .join("\n");
    ok(&["append", "--ledger", &l], &input);
    // The ACL event carries what the index knew; AWS sends it with both.
    let recs = lines(&ok(
        &["tail", "--ledger", &l, "--from", "3", "--format", "s3"],
        "",
    ));
    let acl = &recs[0]["Records"][0];
    assert_eq!(acl["eventName"], "ObjectAcl:Put");
    assert_eq!(
        (
            acl["s3"]["object"]["size"].as_u64(),
            acl["s3"]["object"]["eTag"].as_str()
        ),
        (Some(5), Some("e1"))
    );
    // Retention dropped both commits: a resync still lists both objects.
    let resync = lines(&ok(&["resync", "--ledger", &l, "--format", "s3"], ""));
    let objects: Vec<(String, u64)> = resync
        .iter()
        .map(|m| {
            let o = &m["Records"][0]["s3"]["object"];
            (
                o["key"].as_str().unwrap().to_string(),
                o["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(objects, vec![("a".to_string(), 5), ("b".to_string(), 6)]);
}

/// `seq.sub action key` of each expanded record (`seq.sub kind` of an
/// event's own).
fn expansions(recs: &[Value]) -> Vec<String> {
    recs.iter()
        .map(|r| match r.get("expanded") {
            Some(x) => format!(
                "{}.{} {} {}",
                r["seq"],
                r["sub"],
                x["action"].as_str().unwrap(),
                x["key"].as_str().unwrap()
            ),
            None => format!("{}.{} {}", r["seq"], r["sub"], r["kind"].as_str().unwrap()),
        })
        .collect()
}

/// A legacy bucket's directory rename and recursive delete expand into a
/// record per object the live index held below them (format 9 stores
/// what they took beside the event); a directory renamed into itself is
/// refused and writes nothing.
#[test]
fn legacy_directories_expand_per_object() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    let line = |body: &str| op_line("legacy", body);
    let input = [
        line(r#""kind":"commit","key":"d/a","size":1"#),
        line(r#""kind":"commit","key":"d/e/b","size":2"#),
        line(r#""kind":"rename","key":"d","to_key":"n","is_dir":true"#),
        line(r#""kind":"delete","key":"n","recursive":true,"is_dir":true"#),
    ]
    .join("\n");
    ok(&["append", "--ledger", &l], &input);
    let out = fsfeed(
        &["append", "--ledger", &l],
        &line(r#""kind":"rename","key":"a","to_key":"a/b","is_dir":true"#),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[rename_into_subtree]"), "{err}");
    let stats: Value = serde_json::from_str(&ok(&["stats", "--ledger", &l, "--json"], "")).unwrap();
    assert_eq!(stats["head_seq"], 4);
    let recs = lines(&ok(
        &[
            "tail",
            "--ledger",
            &l,
            "--from",
            "3",
            "--expand-renames",
            "--expand-deletes",
        ],
        "",
    ));
    assert_eq!(
        expansions(&recs),
        vec![
            "3.0 remove d/a",
            "3.1 create n/a",
            "3.2 remove d/e/b",
            "3.3 create n/e/b",
            "4.0 remove n/a",
            "4.1 remove n/e/b"
        ]
    );
    let resync = lines(&ok(&["resync", "--ledger", &l, "--format", "s3"], ""));
    assert!(resync.is_empty(), "{resync:?}");
}

#[test]
fn gaps_are_reported_or_fail() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l, "--max-events", "3"], "");
    ok(&["append", "--ledger", &l], &ops(0, 10));
    let recs = lines(&ok(&["tail", "--ledger", &l, "--from", "2"], ""));
    assert_eq!(
        recs[0],
        serde_json::json!({"gap": {"expected": 2, "actual": 8}})
    );
    assert_eq!(recs.len(), 4);
    let out = fsfeed(
        &["tail", "--ledger", &l, "--from", "2", "--on-gap", "error"],
        "",
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[gap]"));
}

#[test]
fn readers_work_beside_a_running_writer() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    // A writer that holds the ledger open while it appends slowly.
    let mut writer = Command::new(env!("CARGO_BIN_EXE_fsfeed"))
        .args(["append", "--ledger", &l, "--batch-size", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(ops(0, 3).as_bytes()).unwrap();
    stdin.flush().unwrap();
    // tail --follow in another process sees them, and more as they come.
    let out = fsfeed(
        &[
            "tail",
            "--ledger",
            &l,
            "--follow",
            "--max",
            "3",
            "--timeout-ms",
            "200",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&String::from_utf8(out.stdout).unwrap()).len(), 3);
    let stats: Value = serde_json::from_str(&ok(&["stats", "--ledger", &l, "--json"], "")).unwrap();
    assert_eq!(stats["head_seq"], 3);
    // The writer holds the lock: a second writer is refused, with its code.
    let out = fsfeed(&["append", "--ledger", &l], &ops(10, 1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[ledger_locked]"));
    stdin.write_all(ops(3, 2).as_bytes()).unwrap();
    drop(stdin);
    let done = writer.wait_with_output().unwrap();
    assert!(done.status.success());
    let summary: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(summary["last_seq"], 5);
}

#[test]
fn checkpoint_and_workload() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    let wl = ok(
        &[
            "workload",
            "--events",
            "500",
            "--seed",
            "3",
            "--start-us",
            &T0.to_string(),
        ],
        "",
    );
    assert_eq!(wl.lines().count(), 500);
    assert_eq!(
        wl,
        ok(
            &[
                "workload",
                "--events",
                "500",
                "--seed",
                "3",
                "--start-us",
                &T0.to_string()
            ],
            ""
        )
    );
    ok(&["append", "--ledger", &l], &wl);
    let cp = dir.path().join("cp");
    ok(
        &["checkpoint", "--ledger", &l, "--to", cp.to_str().unwrap()],
        "",
    );
    let stats: Value = serde_json::from_str(&ok(
        &["stats", "--ledger", cp.to_str().unwrap(), "--json"],
        "",
    ))
    .unwrap();
    assert_eq!(stats["head_seq"], 500);
}

#[test]
fn s3_and_hdfs_formats() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    let input = format!(
        "{}\n{}\n{}\n",
        r#"{"kind":"create_file","volume":"v","bucket":"b","key":"a b/x.bin","time_us":1767225600000000,"txid":10}"#,
        r#"{"kind":"commit","volume":"v","bucket":"b","key":"a b/x.bin","size":7,"etag":"e","time_us":1767225600001000,"txid":11}"#,
        r#"{"kind":"delete","volume":"v","bucket":"b","key":"a b/x.bin","time_us":1767225600002000,"txid":12}"#
    );
    ok(&["append", "--ledger", &l], &input);
    // create_file has no S3 notification: two messages, one record each.
    let msgs = lines(&ok(&["tail", "--ledger", &l, "--format", "s3"], ""));
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["Records"][0]["eventName"], "ObjectCreated:Put");
    assert_eq!(msgs[0]["Records"][0]["s3"]["object"]["key"], "a+b/x.bin");
    assert_eq!(
        msgs[0]["Records"][0]["eventTime"],
        "2026-01-01T00:00:00.001Z"
    );
    assert_eq!(msgs[1]["Records"][0]["eventName"], "ObjectRemoved:Delete");
    let minio = lines(&ok(
        &[
            "tail",
            "--ledger",
            &l,
            "--format",
            "s3",
            "--s3-profile",
            "minio",
            "--s3-region",
            "eu-west-1",
        ],
        "",
    ));
    assert_eq!(minio[0]["Records"][0]["s3"]["object"]["key"], "a+b%2Fx.bin");
    assert_eq!(minio[0]["Records"][0]["awsRegion"], "eu-west-1");
    let only = lines(&ok(
        &[
            "tail",
            "--ledger",
            &l,
            "--format",
            "s3",
            "--event",
            "s3:ObjectRemoved:*",
        ],
        "",
    ));
    assert_eq!(only.len(), 1);
    // fsfeed's own event kinds only with --s3-extensions: a rename and a
    // truncate (and the bucket op) have no S3 form without it.
    let more = format!(
        "{}\n{}\n{}\n",
        r#"{"kind":"commit","volume":"v","bucket":"b","key":"r","size":1,"etag":"e","time_us":1767225600003000,"txid":13}"#,
        r#"{"kind":"rename","volume":"v","bucket":"b","key":"r","to_key":"s","time_us":1767225600004000,"txid":14}"#,
        r#"{"kind":"truncate","volume":"v","bucket":"b","key":"s","size":0,"time_us":1767225600005000,"txid":15}"#
    );
    let ext = dir.path().join("ext").to_string_lossy().into_owned();
    ok(&["init", "--ledger", &ext], "");
    ok(&["append", "--ledger", &ext], &more);
    let names = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["tail", "--ledger", &ext, "--format", "s3"];
        args.extend_from_slice(extra);
        lines(&ok(&args, ""))
            .iter()
            .map(|m| m["Records"][0]["eventName"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&[]), ["ObjectCreated:Put"]);
    assert_eq!(
        names(&["--s3-extensions"]),
        [
            "ObjectCreated:Put",
            "ObjectRenamed:Rename",
            "ObjectCreated:Truncate"
        ]
    );
    let batches = lines(&ok(&["tail", "--ledger", &l, "--format", "hdfs"], ""));
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0]["txid"], 10);
    assert_eq!(batches[0]["events"][0]["eventType"], "CREATE");
    assert_eq!(batches[1]["events"][0]["eventType"], "CLOSE");
    assert_eq!(batches[1]["events"][0]["path"], "/v/b/a b/x.bin");
    let out = fsfeed(&["tail", "--ledger", &l, "--format", "hdfs-proto"], "");
    assert!(out.status.success());
    let list = fsfeed::render::hdfs::decode_events_list(&out.stdout).unwrap();
    assert_eq!(
        (
            list.first_txid,
            list.last_txid,
            list.sync_txid,
            list.batch.len()
        ),
        (10, 12, 12, 3)
    );
    for (args, code) in [
        (
            vec![
                "tail",
                "--ledger",
                &l,
                "--format",
                "s3",
                "--s3-profile",
                "gcs",
            ],
            "invalid_argument",
        ),
        (
            vec!["tail", "--ledger", &l, "--event", "s3:*Created"],
            "invalid_argument",
        ),
    ] {
        let out = fsfeed(&args, "");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("error[{code}]")),
            "{args:?}"
        );
    }
}

/// `--expand-deletes` expands a bucket's delete into a remove per object
/// its tree held, then the delete itself.
#[test]
fn expand_deletes_of_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    let line = |kind: &str, key: &str, t: i64| {
        format!(
            r#"{{"kind":"{kind}","volume":"v","bucket":"b","layout":"fso","key":"{key}","size":1,"time_us":{}}}"#,
            T0 + t
        ) + "\n"
    };
    let mut input = String::new();
    input += &line("commit", "myfiles/f1", 0);
    input += &line("commit", "g", 1);
    input += &format!(
        r#"{{"kind":"bucket_delete","volume":"v","bucket":"b","layout":"fso","time_us":{}}}"#,
        T0 + 2
    );
    input += "\n";
    ok(&["append", "--ledger", &l], &input);
    let plain = lines(&ok(&["tail", "--ledger", &l, "--from", "3"], ""));
    assert_eq!(plain.len(), 1, "stored once");
    let recs = lines(&ok(
        &["tail", "--ledger", &l, "--from", "3", "--expand-deletes"],
        "",
    ));
    assert_eq!(
        expansions(&recs),
        vec!["3.0 remove g", "3.1 remove myfiles/f1", "3.2 bucket_delete"]
    );
    let s3 = lines(&ok(
        &[
            "tail",
            "--ledger",
            &l,
            "--from",
            "3",
            "--expand-deletes",
            "--format",
            "s3",
        ],
        "",
    ));
    let keys: Vec<&str> = s3
        .iter()
        .map(|r| r["Records"][0]["s3"]["object"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["g", "myfiles/f1"]);
}

#[test]
fn expand_changes_and_resync() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    let line = |kind: &str, key: &str, extra: &str, t: i64| {
        format!(
            r#"{{"kind":"{kind}","volume":"v","bucket":"b","layout":"fso","key":"{key}","time_us":{}{extra}}}"#,
            T0 + t
        ) + "\n"
    };
    let mut input = String::new();
    input += &line("commit", "myfiles/f1", r#","size":1"#, 0);
    input += &line("commit", "myfiles/f2", r#","size":1"#, 1);
    input += &line("commit", "myfiles/subdir/f1", r#","size":1"#, 2);
    input += &line("rename", "myfiles", r#","to_key":"myfiles-RENAMED""#, 3);
    ok(&["append", "--ledger", &l], &input);
    let plain = lines(&ok(&["tail", "--ledger", &l, "--from", "4"], ""));
    assert_eq!(plain.len(), 1, "stored once");
    let recs = lines(&ok(
        &["tail", "--ledger", &l, "--from", "4", "--expand-renames"],
        "",
    ));
    assert_eq!(
        expansions(&recs),
        vec![
            "4.0 remove myfiles/f1",
            "4.1 create myfiles-RENAMED/f1",
            "4.2 remove myfiles/f2",
            "4.3 create myfiles-RENAMED/f2",
            "4.4 remove myfiles/subdir/f1",
            "4.5 create myfiles-RENAMED/subdir/f1"
        ]
    );
    let rows = lines(&ok(
        &["changes", "--ledger", &l, "--since", "4", "--json"],
        "",
    ));
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"change":"RENAME","volume":"v","bucket":"b","key":"myfiles-RENAMED","from_key":"myfiles"})
        ]
    );
    let rows = lines(&ok(
        &["changes", "--ledger", &l, "--since", "1", "--json"],
        "",
    ));
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r["change"] == "NEW"));
    let resync = lines(&ok(&["resync", "--ledger", &l, "--format", "s3"], ""));
    let keys: Vec<&str> = resync
        .iter()
        .map(|m| m["Records"][0]["s3"]["object"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            "myfiles-RENAMED/f1",
            "myfiles-RENAMED/f2",
            "myfiles-RENAMED/subdir/f1"
        ]
    );
    assert!(resync
        .iter()
        .all(|m| m["Records"][0]["fsfeedEventData"]["resync"] == true));
    // parent_id + name through append.
    let out = fsfeed(
        &["append", "--ledger", &l],
        r#"{"kind":"commit","volume":"v","bucket":"b","layout":"fso","parent_id":12345,"name":"x","time_us":1767225600000000}"#,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[unknown_parent]"));
    let out = fsfeed(&["changes", "--ledger", &l, "--since", "latest"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[invalid_argument]"));
}

/// `fsfeed verify`: an intact ledger gives its counts; one with a damaged
/// table file is `corrupt` (exit 1); one with a damaged write-ahead log
/// fails to open as `corrupt`, and `--salvage` keeps the records before the
/// damage. Wrong input: a missing ledger.
#[test]
fn verify_finds_damage_and_salvages_a_damaged_log() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    ok(&["init", "--ledger", &l], "");
    ok(
        &["append", "--ledger", &l, "--batch-size", "50"],
        &ops(1, 2000),
    );
    let v: Value = serde_json::from_str(&ok(&["verify", "--ledger", &l, "--json"], "")).unwrap();
    assert_eq!(v["events"], 2000);
    assert_eq!(v["head_seq"], 2000);
    assert!(ok(&["verify", "--ledger", &l], "").starts_with("ok: events 1..=2000"));

    // A crash image: a copy of the ledger while `fsfeed append` holds it
    // open with everything appended (its stdin still open), so the events
    // are in the write-ahead log only; damage the log's middle.
    let live = ledger(&dir.path().join("live"));
    ok(&["init", "--ledger", &live], "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fsfeed"))
        .args(["append", "--ledger", &live, "--batch-size", "50"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(ops(1, 2000).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let start = std::time::Instant::now();
    while !ok(&["stats", "--ledger", &live, "--json"], "").contains("\"head_seq\":2000") {
        assert!(
            start.elapsed().as_secs() < 60,
            "the appender never got to 2000"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let image = dir.path().join("image");
    std::fs::create_dir_all(image.join("db")).unwrap();
    for e in std::fs::read_dir(Path::new(&live).join("db"))
        .unwrap()
        .flatten()
    {
        if e.path().is_file() && e.file_name() != "LOCK" {
            std::fs::copy(e.path(), image.join("db").join(e.file_name())).unwrap();
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let image = image.to_str().unwrap().to_string();
    let log = std::fs::read_dir(Path::new(&image).join("db"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&log).unwrap();
    // At least 30 bytes of each of the 2,000 events (about 48 with the
    // block framing; the live index's writes are not in the log).
    assert!(
        bytes.len() > 2_000 * 30,
        "the image's log holds the events: {} bytes",
        bytes.len()
    );
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&log, bytes).unwrap();
    let out = fsfeed(&["verify", "--ledger", &image], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[corrupt]"));
    let v: Value = serde_json::from_str(&ok(
        &["verify", "--ledger", &image, "--salvage", "--json"],
        "",
    ))
    .unwrap();
    let head = v["head_seq"].as_u64().unwrap();
    assert!(head > 0 && head < 2000, "salvaged to {head}");
    assert_eq!(v["events"].as_u64().unwrap(), head);

    // Damage the largest table file of the first ledger: a reader (this
    // opens read-only) gets `corrupt`, whichever column family it holds.
    let db = Path::new(&l).join("db");
    let sst = std::fs::read_dir(&db)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&sst).unwrap();
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xa5;
    }
    std::fs::write(&sst, bytes).unwrap();
    let out = fsfeed(&["verify", "--ledger", &l], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error[corrupt]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = fsfeed(
        &["verify", "--ledger", &ledger(&dir.path().join("none"))],
        "",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[ledger_not_found]"));
}
