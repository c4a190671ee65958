//! Why the emulator refuses what its user gave it: a world (a state file, a setting) it cannot run, or a control
//! request it cannot carry out. The message is said to that user as it is, naming the part and the reason.

/// A refusal of the emulator's own (not one of WeChat's answers, which are [`super::wire::WxError`]s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The world cannot run: which part of it, and why.
    #[error("{0}")]
    World(String),
    /// A control request (a push, an authorisation, a clock move…) cannot be carried out: why.
    #[error("{0}")]
    Request(String),
}
