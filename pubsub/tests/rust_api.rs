//! The service through its Rust API (what `fsfeed serve` runs), with the
//! real server loop: Kafka push (the `kafka://` extension) to a real tansu
//! broker, and wrong input to every entry point a host embeds.

use std::sync::Arc;
use std::time::Duration;

use fsfeed::{EventId, Ledger, Op, Position};
use fsfeed_delivery::testkit::{wait_until, Tansu};
use fsfeed_pubsub::service::NotificationSpec;
use fsfeed_pubsub::store::PushArgs;
use fsfeed_pubsub::{Config, Error, Service};

const CONFIG: &str = "[[users]]\nuid = \"alice\"\naccess_key = \"AK\"\nsecret_key = \"s\"\n\
[[users]]\nuid = \"carol\"\naccess_key = \"AKC\"\nsecret_key = \"c\"\n";

fn setup() -> (tempfile::TempDir, Ledger, Arc<Service>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let writer = Ledger::open(&path).unwrap();
    writer
        .append(Op::bucket_create("vol1", "photos").by("alice", "", ""))
        .unwrap();
    let svc = Service::open(
        Ledger::open_read_only(&path).unwrap(),
        Config::from_toml(CONFIG).unwrap(),
    )
    .unwrap();
    (dir, writer, Arc::new(svc))
}

fn code(e: Error) -> (u16, &'static str) {
    match e {
        Error::Request(a) => (a.status, a.code),
        other => panic!("not a request error: {other}"),
    }
}

#[test]
fn kafka_push_to_tansu() {
    let broker = Tansu::start();
    broker.create_topic("orders", 1);
    let (_dir, writer, svc) = setup();
    let alice = svc.config().users[0].clone();
    svc.put_topic(
        &alice,
        "orders",
        Some(PushArgs {
            endpoint: broker.endpoint(),
            amqp_exchange: None,
            amqp_ack_level: None,
            verify_ssl: true,
        }),
    )
    .unwrap();
    svc.put_s3_notifications(
        &alice,
        "photos",
        vec![NotificationSpec {
            id: "n1".into(),
            topic: "orders".into(),
            events: vec!["s3:ObjectCreated:*".into()],
            prefix: None,
            suffix: None,
        }],
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = rt.spawn(fsfeed_pubsub::serve(svc.clone(), listener, stop_rx));
    let mut want = Vec::new();
    for i in 0..10 {
        let seq = writer
            .append(Op::commit("vol1", "photos", &format!("k{i}"), 1, "e"))
            .unwrap();
        want.push(EventId::new(Position::new(seq, 0)).to_string());
    }
    let got = broker.read("orders", 1, want.len(), Duration::from_secs(30));
    let ids: Vec<String> = got.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(ids, want);
    assert_eq!(got[0].key.as_deref(), Some("photos/k0"));
    // Pushed and acknowledged: acked.
    wait_until("the pushed events acked", Duration::from_secs(10), || {
        svc.pull(&alice, "n1", 100, None).unwrap().events.is_empty()
    });
    assert_eq!(
        svc.metrics()
            .push_ok
            .load(std::sync::atomic::Ordering::SeqCst),
        10
    );
    let _ = stop.send(true);
    rt.block_on(server).unwrap().unwrap();
}

#[test]
fn wrong_input_through_the_rust_api_is_a_typed_error_and_changes_nothing() {
    let (_dir, writer, svc) = setup();
    let alice = svc.config().users[0].clone();
    let carol = svc.config().users[1].clone();
    assert_eq!(
        code(svc.put_topic(&alice, ".bad", None).unwrap_err()),
        (400, "InvalidArgument")
    );
    let bad_push = PushArgs {
        endpoint: "amqp://127.0.0.1".into(),
        amqp_exchange: None,
        amqp_ack_level: None,
        verify_ssl: true,
    };
    assert_eq!(
        code(svc.put_topic(&alice, "t", Some(bad_push)).unwrap_err()).0,
        400
    );
    assert!(svc.list_topics(&alice).is_empty());
    svc.put_topic(&alice, "t", None).unwrap();
    assert_eq!(
        code(svc.get_topic(&carol, "t").unwrap_err()),
        (403, "AccessDenied")
    );
    assert_eq!(
        code(
            svc.put_subscription(&alice, "s", "nosuch", None)
                .unwrap_err()
        ),
        (404, "NoSuchKey")
    );
    svc.put_subscription(&alice, "s", "t", None).unwrap();
    assert_eq!(code(svc.pull(&alice, "s", 0, None).unwrap_err()).0, 400);
    assert_eq!(
        code(svc.pull(&alice, "s", 10, Some("nope")).unwrap_err()).0,
        400
    );
    assert_eq!(code(svc.pull(&carol, "s", 10, None).unwrap_err()).0, 403);
    assert_eq!(code(svc.ack(&alice, "s", &[]).unwrap_err()).0, 400);
    assert_eq!(
        code(svc.ack(&alice, "s", &["x".into()]).unwrap_err()).0,
        400
    );
    assert_eq!(
        code(
            svc.put_notification(&alice, "nobucket", "t", vec![])
                .unwrap_err()
        ),
        (404, "NoSuchBucket")
    );
    assert_eq!(
        code(
            svc.put_notification(&carol, "photos", "t", vec![])
                .unwrap_err()
        ),
        (403, "AccessDenied")
    );
    assert_eq!(
        code(
            svc.put_notification(&alice, "photos", "t", vec!["OBJECT_X".into()])
                .unwrap_err()
        )
        .0,
        400
    );
    assert_eq!(
        svc.topic_of_arn(&alice, "arn:aws:s3:::x")
            .unwrap_err()
            .status,
        400
    );
    // Nothing above changed what a pull sees.
    svc.put_notification(&alice, "photos", "t", vec![]).unwrap();
    let seq = writer
        .append(Op::commit("vol1", "photos", "x", 1, "e"))
        .unwrap();
    let p = svc.pull(&alice, "s", 10, None).unwrap();
    assert_eq!(p.ids, vec![EventId::new(Position::new(seq, 0))]);
    // A second service on the same state is refused (the store is locked).
    let second = Service::open(
        Ledger::open_read_only(writer.path()).unwrap(),
        Config::from_toml(CONFIG).unwrap(),
    );
    assert_eq!(second.unwrap_err().code(), "io");
}
