//! Head notifications for event-loop bindings (asyncio, Node).
//!
//! A blocking [`crate::Cursor::read`] parks its thread until the head moves.
//! An event loop cannot park, and a thread per waiting reader does not scale
//! to thousands of idle consumers. A [`Notifier`] runs one thread per ledger
//! that waits for the head on behalf of every registered waiter and calls
//! each waiter's callback once, from that thread, when the head reaches the
//! seq it asked for. The binding's callback only schedules work on its event
//! loop (`loop.call_soon_threadsafe`, a napi ThreadsafeFunction); the reader
//! then reads without waiting.
//!
//! A callback gets `true` when the head reached its seq, and `false` when the
//! notifier stopped or the ledger closed or failed: the reader's next read
//! then reports the ledger's own error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::ledger::Ledger;

/// What a waiter is called with: did the head reach its seq?
pub type Wake = Box<dyn FnOnce(bool) + Send>;

/// Longest a wait lasts before the thread looks at its waiters again.
const ROUND: Duration = Duration::from_millis(500);

struct State {
    waiters: Vec<(u64, Wake)>,
    stopped: bool,
}

struct Shared {
    ledger: Ledger,
    state: Mutex<State>,
    /// Signalled when a waiter is added or the notifier stops.
    changed: Condvar,
    /// Breaks the thread's current wait for the head.
    kick: AtomicBool,
}

/// One thread that wakes many waiters when the head moves.
pub struct Notifier {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    /// A notifier for `ledger`; its thread starts with the first waiter.
    pub fn new(ledger: Ledger) -> Notifier {
        Notifier {
            shared: Arc::new(Shared {
                ledger,
                state: Mutex::new(State {
                    waiters: Vec::new(),
                    stopped: false,
                }),
                changed: Condvar::new(),
                kick: AtomicBool::new(false),
            }),
            thread: Mutex::new(None),
        }
    }

    /// Call `wake(true)` once the head is at least `seq` (at once, from the
    /// notifier's thread, when it already is), or `wake(false)` when the
    /// notifier stops or the ledger closes first.
    pub fn when_head_reaches(&self, seq: u64, wake: Wake) -> Result<()> {
        {
            let mut s = self.shared.state.lock();
            if s.stopped {
                drop(s);
                wake(false);
                return Ok(());
            }
            s.waiters.push((seq, wake));
        }
        let mut t = self.thread.lock();
        if t.is_none() {
            let shared = self.shared.clone();
            *t = Some(
                std::thread::Builder::new()
                    .name("fsfeed-notifier".into())
                    .spawn(move || run(&shared))?,
            );
        }
        self.shared.kick.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        self.shared.ledger.wake_readers();
        Ok(())
    }

    /// Waiters not yet woken.
    pub fn pending(&self) -> usize {
        self.shared.state.lock().waiters.len()
    }

    /// Wake every waiter with `false` and end the thread.
    pub fn stop(&self) {
        self.shared.state.lock().stopped = true;
        self.shared.kick.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        self.shared.ledger.wake_readers();
        if let Some(t) = self.thread.lock().take() {
            // Dropped from its own thread (a callback held the last handle):
            // the thread ends by itself after this round.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        // Waiters added between the thread's last look and its end.
        let rest = std::mem::take(&mut self.shared.state.lock().waiters);
        for (_, w) in rest {
            w(false);
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(sh: &Shared) {
    loop {
        let min = {
            let mut s = sh.state.lock();
            while s.waiters.is_empty() && !s.stopped {
                sh.changed.wait(&mut s);
            }
            if s.stopped {
                break;
            }
            sh.kick.store(false, Ordering::SeqCst);
            s.waiters.iter().map(|(seq, _)| *seq).min().unwrap_or(0)
        };
        let reached = sh
            .ledger
            .wait_for_head(min, Instant::now() + ROUND, Some(&sh.kick));
        let (head, failed) = match reached.and_then(|_| sh.ledger.head_seq()) {
            Ok(h) => (h, false),
            Err(_) => (0, true),
        };
        let due: Vec<Wake> = {
            let mut s = sh.state.lock();
            let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut s.waiters)
                .into_iter()
                .partition(|(seq, _)| failed || *seq <= head);
            s.waiters = keep;
            if failed {
                s.stopped = true;
            }
            due.into_iter().map(|(_, w)| w).collect()
        };
        for w in due {
            w(!failed);
        }
        if failed {
            break;
        }
    }
    let rest = std::mem::take(&mut sh.state.lock().waiters);
    for (_, w) in rest {
        w(false);
    }
}
