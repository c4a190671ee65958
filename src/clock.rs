//! The wall clock, read here and nowhere else: token expiries (shared by the fleet, so they must mean the same on
//! every instance), Lambda's epoch deadline, API security's timestamps, SigV4's date and the log's timestamp.
//!
//! Deadlines and durations inside one invocation use the monotonic `Instant` instead, which no clock change moves.
//! Code whose outcome depends on the time takes it as an argument, so that its tests choose it.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock now.
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// `time` in unix milliseconds; 0 for a time before 1970 (a clock that far off has no meaningful answer).
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The wall clock now, in unix milliseconds.
pub fn now_ms() -> u64 {
    unix_ms(now())
}

/// The wall clock now, in whole unix seconds.
pub fn unix_secs() -> u64 {
    now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
