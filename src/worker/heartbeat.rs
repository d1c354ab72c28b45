//! The loop's heartbeat: which step it is in and since when, for the watchdog and `/healthz`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which step the worker's loop is in, and since when. A watchdog thread reads it: every step
/// is bounded (librdkafka timeouts, delivery deadlines, the idle timer), so a step that lasts far
/// longer than any bound means the loop is stuck inside a client call, and the process should
/// exit for its supervisor to restart it rather than sit silently holding its partitions.
#[derive(Debug)]
pub struct Heartbeat {
    current: Mutex<(&'static str, Instant)>,
}

impl Heartbeat {
    pub(crate) fn new() -> Self {
        Heartbeat { current: Mutex::new(("starting", Instant::now())) }
    }

    /// Records that the loop entered `step` now.
    pub fn beat(&self, step: &'static str) {
        *self.current.lock().expect("not poisoned") = (step, Instant::now());
    }

    /// The step the loop has been in for longer than `limit`, and for how long.
    pub fn stalled(&self, limit: Duration) -> Option<(&'static str, Duration)> {
        let (step, since) = *self.current.lock().expect("not poisoned");
        let elapsed = since.elapsed();
        (elapsed > limit).then_some((step, elapsed))
    }
}
