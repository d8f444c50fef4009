//! The embedded users store and the services around it: users and passwords,
//! login with throttling, access and refresh tokens, API keys, and the admin CLI.

pub mod cli;
pub mod config;
pub mod cpu_pool;
pub mod digest;
pub mod error;
pub mod hash_pool;
pub mod model;
pub mod password;
pub mod policy;
pub mod service;
pub mod store;
pub mod throttle;

pub use config::UsersConfig;
pub use error::UsersError;
pub use model::{ApiKeyInfo, NewUser, User, UserQuery, UserUpdate};
pub use service::{AccessToken, TokenPair, UsersService};
