//! The fleet's stores, real ones: redis-server and dynalite.

mod dynamodb;
mod redis;
mod shared;
