//! Rollouts over SQS: the queue (moto's SQS), the platform's store (redis-server, dynalite) and Lambda's event source
//! mapping (a stand-in driving real function processes): what a rollout guarantees, and the support's own tests.

mod at_most_once;
mod esm_support;
mod outcomes;
mod records;
mod rig;
