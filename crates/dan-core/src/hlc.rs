//! Hybrid logical clocks: wall-clock milliseconds plus a counter, so that a
//! change made after seeing another change always sorts after it, even when
//! the machines' clocks disagree.

use serde::{Deserialize, Serialize};

/// A hybrid logical timestamp. Ordered by wall time, then counter.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (as seen by the writer).
    pub wall_ms: u64,
    /// Orders changes within the same millisecond.
    pub counter: u32,
}

/// How far ahead of the receiver's clock an op's clock may be before the
/// receiver holds it back (not applied, not refused) until its own clock
/// gets there: a member cannot win every conflict, or drag everyone's clock
/// forward, by dating its ops into the future.
pub const MAX_AHEAD_MS: u64 = 10 * 60 * 1000;

impl Hlc {
    /// Whether this clock is more than [`MAX_AHEAD_MS`] ahead of `now_ms`.
    pub fn too_far_ahead(&self, now_ms: u64) -> bool {
        self.wall_ms > now_ms.saturating_add(MAX_AHEAD_MS)
    }

    /// The timestamp for a new local change, given the latest timestamp this
    /// instance has issued or seen and the wall clock now.
    pub fn next(latest: Hlc, now_ms: u64) -> Hlc {
        if now_ms > latest.wall_ms {
            Hlc {
                wall_ms: now_ms,
                counter: 0,
            }
        } else if latest.counter >= crate::replica::MAX_COUNTER {
            // Carry into the next millisecond rather than reach a counter
            // no op may carry (a peer could otherwise freeze every writer).
            Hlc {
                wall_ms: latest.wall_ms.saturating_add(1),
                counter: 0,
            }
        } else {
            Hlc {
                wall_ms: latest.wall_ms,
                counter: latest.counter + 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_always_greater_even_when_the_clock_goes_back() {
        let seen = Hlc {
            wall_ms: 1_000,
            counter: 3,
        };
        assert!(Hlc::next(seen, 900) > seen);
        assert!(Hlc::next(seen, 1_000) > seen);
        assert_eq!(
            Hlc::next(seen, 2_000),
            Hlc {
                wall_ms: 2_000,
                counter: 0
            }
        );
    }
}
