//! The account's own use cases, one file per concern:
//! - `login`: the login reservation, its verdicts, the session it starts;
//! - `sessions`: refresh, logout, the owner's sessions;
//! - `account`: creating an account, the profile, the password, the security events.

mod account;
mod login;
mod sessions;

pub use account::NewAccount;
pub use login::{Issued, LoginInput};
pub use sessions::SessionView;
