//! A value a user wrote that is not valid, with how to write it.

/// What is wrong with a value, and a hint saying how to write it; parsers
/// of user-written files turn it into a diagnostic at the value's position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({hint})")]
pub struct InvalidValue {
    /// What is wrong.
    pub message: String,
    /// How to write it.
    pub hint: String,
}

impl InvalidValue {
    /// An invalid value with `message` and `hint`.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        InvalidValue {
            message: message.into(),
            hint: hint.into(),
        }
    }
}
