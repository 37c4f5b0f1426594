//! Plain domain types shared by every part of plantao. No I/O lives here.

mod expr;
mod ids;
mod secret;
mod status;

pub use expr::{Expr, ExprError, ExprValue, Reference, Vars};
pub use ids::{ParseRunIdError, RunId};
pub use secret::{Redactor, Secret, Text};
pub use status::{
    AlertState, DeliveryState, NotificationEvent, ParseEnumError, Role, RunStatus, Severity,
    StageStatus, Trigger,
};

/// A name that may appear in expressions and environment variable names (step names, counters,
/// parameters, outputs): a letter or `_`, then letters, digits and `_`.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A key of a pipeline's state as kept: in lowercase, since steps read it as the upper-case
/// `PLANTAO_STATE_<KEY>` and two spellings would fight over one variable; what is wrong when
/// it is not an identifier.
pub fn state_key(key: &str) -> Result<String, String> {
    let kept = key.to_ascii_lowercase();
    if is_identifier(&kept) {
        Ok(kept)
    } else {
        Err(format!(
            "`{key}` is not a state key: use letters, digits and `_`, starting with a letter"
        ))
    }
}
