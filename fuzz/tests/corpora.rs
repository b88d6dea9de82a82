//! Every committed input of every fuzz target, through the target's property
//! on a plain build: `corpus/TARGET/` (the seeds and what the fuzzer kept,
//! minimised) and `regressions/TARGET/` (inputs that once failed, named
//! after what they found). `write_seeds` (ignored; run it by name) makes
//! the seeds a fresh corpus starts from.

use std::fs;
use std::path::{Path, PathBuf};

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("op_json", fsfeed_fuzz::op_json),
    ("event_proto", fsfeed_fuzz::event_proto),
    ("history_row", fsfeed_fuzz::history_row),
    ("event_id", fsfeed_fuzz::event_id),
    ("filter", fsfeed_fuzz::filter),
    ("config", fsfeed_fuzz::config),
    ("pubsub_request", fsfeed_fuzz::pubsub_request),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

#[test]
fn every_committed_input_keeps_its_property() {
    for (name, check) in TARGETS {
        let corpus = files(&root().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name} is empty: run `cargo test --test corpora -- --ignored write_seeds`"
        );
        let regressions = files(&root().join("regressions").join(name));
        for path in corpus.iter().chain(&regressions) {
            let data = fs::read(path).unwrap();
            if let Err(e) = std::panic::catch_unwind(|| check(&data)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{name}: {} fails: {msg}", path.display());
            }
        }
    }
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = root().join("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

#[test]
#[ignore = "writes the seed corpora; run by name"]
fn write_seeds() {
    use fsfeed::op::Kind;
    use prost::Message;
    let ops: Vec<fsfeed::Op> = fsfeed::workload::Workload::new(7, 1_767_225_600_000_000)
        .take(64)
        .collect();
    for (i, op) in ops.iter().enumerate() {
        write(
            "op_json",
            &format!("{i:02}"),
            op.to_json_value().to_string().as_bytes(),
        );
        let ev = fsfeed::Event {
            seq: i as u64 + 1,
            path: op.key.clone(),
            to_path: match &op.kind {
                Some(Kind::Rename(r)) => r.to_key.clone(),
                _ => String::new(),
            },
            op: Some(op.clone()),
            ..Default::default()
        };
        write("event_proto", &format!("{i:02}"), &ev.encode_to_vec());
        write("history_row", &format!("{i:02}"), &ev.encode_to_vec());
    }
    for (i, s) in [
        "000000000000002A-00000000",
        "0000000000000001-0000000F",
        "42",
        "42:3",
        "earliest",
        "latest",
        "committed",
        "2026-01-01T00:00:00Z",
        "{\"seq\":3,\"sub\":1}",
        "17",
    ]
    .iter()
    .enumerate()
    {
        write("event_id", &format!("text-{i:02}"), s.as_bytes());
    }
    let mut bin = 42u64.to_le_bytes().to_vec();
    bin.extend(7u32.to_le_bytes());
    write("event_id", "bytes", &bin);
    for (i, (f, fields)) in [
        ("{}", "\x00b\x00a/x\x00"),
        (
            "{\"buckets\":[\"b\"],\"prefix\":\"a/\"}",
            "\x02b\x00a/x\x00c/y",
        ),
        (
            "{\"suffix\":\".jpg\",\"kinds\":[\"commit\"]}",
            "\x01b\x00p.jpg\x00",
        ),
        ("{\"events\":[\"s3:ObjectCreated:*\"]}", "\x01b\x00k\x00"),
        (
            "{\"events\":[\"ObjectRemoved:Delete\"],\"prefix\":\"\"}",
            "\x03b\x00k\x00",
        ),
        ("{\"kinds\":[\"bucket_create\"]}", "\x05b\x00\x00"),
    ]
    .iter()
    .enumerate()
    {
        write(
            "filter",
            &format!("{i:02}"),
            format!("{f}\0{fields}").as_bytes(),
        );
    }
    let configs: [(u8, &str); 5] = [
        (
            0,
            "[[publisher]]\nname = \"audit\"\nendpoint = \"amqp://guest:pw42secret@127.0.0.1:5672/\"\n\
             amqp_exchange = \"fsfeed\"\namqp_ack_level = \"broker\"\nformat = \"s3\"\ns3_profile = \"ceph\"\n\
             filter = { buckets = [\"b1\"], prefix = \"logs/\", events = [\"s3:ObjectCreated:*\"] }\n\
             batch_max = 1000\ngate = \"lock\"\n",
        ),
        (
            0,
            "[[publisher]]\nname = \"k\"\nendpoint = \"kafka://127.0.0.1:9092\"\nkafka_topic = \"t\"\n\
             [publisher.kafka_options]\n\"sasl.password\" = \"kafka9secret\"\n",
        ),
        (
            1,
            "interval = \"60s\"\ndedup = \"per_object\"\nformat = \"native\"\n[[sources]]\nbucket = \"photos\"\n\
             key_prefix = \"2026/\"\n[dest]\nendpoint = \"http://127.0.0.1:9000\"\nregion = \"us-east-1\"\n\
             bucket = \"changelog\"\nprefix = \"zone-a\"\npath_style = true\naccess_key = \"AKIA1\"\n\
             secret_key = \"wJalr9secretKEY\"\n[lease]\nttl = \"30s\"\n",
        ),
        (
            2,
            "[[users]]\nuid = \"alice\"\naccess_key = \"AK\"\nsecret_key = \"s3cret-alice-1\"\n\
             [zone]\ntenant = \"t\"\nevents_retention_days = 7\n[push]\nbatch = 10\n",
        ),
        (2, "[server]\nrequest_timeout_ms = 100\n[[users]]\nuid = \"bob\"\naccess_key = \"AKB\"\nsecret_key = \"b0bsecret99\"\n"),
    ];
    for (i, (which, text)) in configs.iter().enumerate() {
        let mut data = vec![*which];
        data.extend(text.as_bytes());
        write("config", &format!("{i:02}"), &data);
    }
    let notification = "<NotificationConfiguration><TopicConfiguration><Id>n1</Id>\
        <Topic>arn:aws:sns:default::t1</Topic><Event>s3:ObjectCreated:*</Event>\
        <Filter><S3Key><FilterRule><Name>prefix</Name><Value>a/</Value></FilterRule>\
        </S3Key></Filter></TopicConfiguration></NotificationConfiguration>";
    let requests = [
        "S PUT /topics/t1\n\n".to_string(),
        "S PUT /topics/t2?push-endpoint=http%3A%2F%2Fu%3Apw%40127.0.0.1%3A9%2Fx&verify-ssl=false\n\n".into(),
        "S GET /topics\n\n".into(),
        "S GET /topics/t1\n\n".into(),
        format!("S PUT /photos?notification\napplication/xml\n{notification}"),
        "S GET /photos?notification\n\n".into(),
        "S PUT /notifications/bucket/photos?topic=t1&events=OBJECT_CREATE\n\n".into(),
        "S GET /notifications/bucket/photos\n\n".into(),
        "S PUT /subscriptions/s1?topic=t1\n\n".into(),
        "S GET /subscriptions/s1?events&max-entries=10\n\n".into(),
        "S POST /subscriptions/s1?ack&event-id=0000000000000001-00000000\n\n".into(),
        "S DELETE /subscriptions/s1\n\n".into(),
        "S POST /\napplication/x-www-form-urlencoded\nAction=CreateTopic&Name=t3".into(),
        "S POST /\napplication/x-www-form-urlencoded\nAction=ListTopics".into(),
        "S POST /\napplication/x-www-form-urlencoded\nAction=GetTopicAttributes&TopicArn=arn:aws:sns:default::t3".into(),
        "U GET /topics\n\n".into(),
        "A GET /topics AWS FUZZAK:bm9wZQ==\n\n".into(),
        "A GET /topics AWS4-HMAC-SHA256 Credential=FUZZAK/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\n\n".into(),
        "U GET /metrics\n\n".into(),
    ];
    for (i, r) in requests.iter().enumerate() {
        write("pubsub_request", &format!("{i:02}"), r.as_bytes());
    }
}
