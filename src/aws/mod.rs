//! The AWS services the function calls itself, over their JSON APIs, signed with SigV4 on `ring` (`sigv4`): DynamoDB
//! (the fleet's store, `crate::token`) and SQS (the rollout queue, [`sqs`]). Not the AWS SDK, which would double the
//! artefact and its cold start for a handful of calls.

mod api;
mod sigv4;
pub mod sqs;

pub(crate) use api::{JsonApi, Misconfigured, Refusal, Service};
