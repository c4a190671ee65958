//! What every crate's tests share, written once: paths in the temp directory removed when a test ends ([`temp`]), a
//! real `redis-server` on loopback ([`redis`]), and the checks that no secret or token reached an output ([`leaks`]).

pub mod leaks;
pub mod redis;
pub mod temp;
