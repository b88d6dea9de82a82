//! Model-based property test: random interleavings of appends, retention
//! changes, cursor commits and reopens against a small in-memory model.
//! After every step: seq is dense, the retained window is exactly the
//! model's, and every named cursor resumes where the model says.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use fsfeed::{CursorOptions, Durability, Ledger, Op, Position, Retention, Start};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    /// n ops whose op times move by these deltas (ms; may go backwards).
    Append(Vec<i64>),
    SetRetention(Option<u64>, Option<u64>),
    /// Commit cursor `c` at (first + k) clamped into the valid range.
    Commit(usize, u64),
    Reopen,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => prop::collection::vec(-3i64..10, 1..40).prop_map(Action::Append),
        1 => (prop::option::of(1u64..60), prop::option::of(5u64..80))
            .prop_map(|(e, a)| Action::SetRetention(e, a)),
        2 => (0usize..3, 0u64..100).prop_map(|(c, k)| Action::Commit(c, k)),
        1 => Just(Action::Reopen),
    ]
}

#[derive(Default)]
struct Model {
    times: Vec<i64>, // op time of seq i+1
    first: u64,
    max_events: Option<u64>,
    max_age_ms: Option<u64>,
    cursors: BTreeMap<String, u64>,
    clock: i64,
}

impl Model {
    fn head(&self) -> u64 {
        self.times.len() as u64
    }

    fn retain(&mut self) {
        let head = self.head();
        if head == 0 {
            return;
        }
        let mut target = self.first;
        if let Some(m) = self.max_events {
            target = target.max((head + 1).saturating_sub(m));
        }
        if let Some(age) = self.max_age_ms {
            let max = *self.times.iter().max().unwrap();
            let cutoff = max - age as i64 * 1000;
            let mut running = i64::MIN;
            for (i, t) in self.times.iter().enumerate() {
                running = running.max(*t);
                if running >= cutoff {
                    target = target.max(i as u64 + 1);
                    break;
                }
            }
        }
        self.first = target.min(head).max(self.first);
    }
}

fn retention(m: &Model) -> Retention {
    Retention {
        max_events: m.max_events,
        max_age_us: m.max_age_ms.map(|a| a * 1000),
        ..Default::default()
    }
}

fn check(ledger: &Ledger, m: &Model) {
    let head = m.head();
    assert_eq!(ledger.head_seq().unwrap(), head);
    let first = if head == 0 { 1 } else { m.first };
    assert_eq!(ledger.first_seq().unwrap(), first);
    let got: Vec<(u64, i64)> = ledger
        .scan(1, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.op.unwrap().time_us))
        .collect();
    let want: Vec<(u64, i64)> = (first..=head)
        .map(|s| (s, m.times[s as usize - 1]))
        .collect();
    assert_eq!(got, want);
    for (name, pos) in &m.cursors {
        let mut c = ledger.cursor(Some(name), CursorOptions::default()).unwrap();
        assert_eq!(c.position(), Position::new(*pos, 0), "cursor {name}");
        let b = c.read(1, Duration::ZERO).unwrap();
        if *pos < first && head > 0 {
            assert_eq!(b.gap.map(|g| (g.expected, g.actual)), Some((*pos, first)));
        } else {
            assert!(b.gap.is_none());
        }
        let expect_first = (*pos).max(first);
        assert_eq!(
            b.records.first().map(|r| r.event.seq),
            (expect_first <= head).then_some(expect_first)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn ledger_matches_the_model(actions in prop::collection::vec(action(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = open(dir.path(), Durability::Buffered, None);
        let mut m = Model { first: 1, clock: T0, ..Default::default() };
        for a in actions {
            match a {
                Action::Append(deltas) => {
                    let ops: Vec<Op> = deltas
                        .iter()
                        .map(|d| {
                            m.clock += d * 1000;
                            m.times.push(m.clock);
                            Op::commit("v", "b", &format!("k{}", m.times.len()), 1, "e").at(m.clock)
                        })
                        .collect();
                    ledger.append_batch(ops).unwrap();
                    m.retain();
                }
                Action::SetRetention(e, a) => {
                    m.max_events = e;
                    m.max_age_ms = a;
                    ledger.set_retention(retention(&m)).unwrap();
                    m.retain();
                }
                Action::Commit(c, k) => {
                    let name = format!("c{c}");
                    let pos = (m.first + k).min(m.head() + 1).max(1);
                    let cur = ledger
                        .cursor(Some(&name), CursorOptions { start: Start::Earliest, ..Default::default() })
                        .unwrap();
                    cur.commit(Position::new(pos, 0)).unwrap();
                    m.cursors.insert(name, pos);
                }
                Action::Reopen => {
                    ledger.close().unwrap();
                    drop(ledger);
                    ledger = open(dir.path(), Durability::Buffered, None);
                }
            }
            check(&ledger, &m);
        }
    }
}
