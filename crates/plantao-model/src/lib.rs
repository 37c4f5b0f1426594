//! Plain domain types shared by every part of plantao. No I/O lives here.

mod expr;
mod ids;
mod secret;
mod status;

pub use expr::{Expr, ExprError, ExprValue, Reference, Vars};
pub use ids::{ParseRunIdError, RunId};
pub use secret::{Redactor, Secret, Text};
pub use status::{ParseEnumError, RunStatus, StageStatus, Trigger};
