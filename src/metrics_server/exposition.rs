//! The exposition a scrape is answered with: rendered on each scrape, except that scrapes
//! within [`REUSE`] of a rendering that a response still holds share it.
//!
//! So a crowd of clients that ask for `/metrics` and read slowly (or never) costs one
//! rendering per [`REUSE`] in time and memory, not one each: the bodies alive at once are at
//! most [`super::WRITE_TIMEOUT`] / [`REUSE`]. Sequential scrapes, each finished before the
//! next, each get a fresh rendering. The values cannot go stale by sharing: the view they
//! render is published once a second.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::Render;

/// How long a rendering still being written to some client is handed to new scrapes.
pub(super) const REUSE: Duration = Duration::from_millis(100);

/// The renderer and its last rendering (held weakly: only responses keep it alive).
pub(super) struct Exposition {
    render: Render,
    last: Option<(Instant, Weak<[u8]>)>,
}

impl Exposition {
    pub(super) fn new(render: Render) -> Exposition {
        Exposition { render, last: None }
    }

    /// The body of a scrape at `now`.
    pub(super) fn body(&mut self, now: Instant) -> Arc<[u8]> {
        if let Some((at, last)) = &self.last {
            if now.saturating_duration_since(*at) < REUSE {
                if let Some(body) = last.upgrade() {
                    return body;
                }
            }
        }
        let body: Arc<[u8]> = Arc::from((self.render)().into_bytes());
        self.last = Some((now, Arc::downgrade(&body)));
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting() -> (Exposition, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let render: Render = Box::new(move || {
            let n = counted.fetch_add(1, Ordering::Relaxed);
            format!("rendering {n}\n")
        });
        (Exposition::new(render), calls)
    }

    #[test]
    fn overlapping_scrapes_share_a_rendering_and_finished_ones_do_not() {
        let (mut e, calls) = counting();
        let t = Instant::now();
        let held = e.body(t);
        let again = e.body(t + REUSE / 2);
        assert!(Arc::ptr_eq(&held, &again));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        // Past REUSE a new rendering, even while the old one is still held.
        let later = e.body(t + REUSE);
        assert!(!Arc::ptr_eq(&held, &later));
        assert_eq!(&*later, b"rendering 1\n");
        // Once no response holds it, the next scrape renders afresh at once.
        drop((held, again, later));
        let fresh = e.body(t + REUSE + Duration::from_millis(1));
        assert_eq!(&*fresh, b"rendering 2\n");
        assert_eq!(calls.load(Ordering::Relaxed), 3);
    }
}
