//! The account's own use cases, one file per concern:
//! - `login`: the login reservation, its verdicts, the session it starts;
//! - `sessions`: refresh, logout, the owner's sessions;
//! - `signin`: what every sign-in method shares (account rules, the session, its event);
//! - `account`: creating an account, the profile, the password, the security events.

mod account;
mod login;
mod sessions;
mod signin;

pub use account::NewAccount;
pub use login::{Issued, LoginInput};
pub use sessions::SessionView;
pub use signin::SignInMethod;
