//! The users service as the validator's [`Provisioner`]: external tokens name users
//! by name, and `provision = "auto"` issuers create them (passwordless) on first sight.

use crate::auth::provision::{BoxFuture, LocalUser, Provisioner};
use crate::users::{NewUser, User, UsersService};

fn local(u: User) -> LocalUser {
    LocalUser {
        id: u.id,
        username: u.username,
        active: u.active,
    }
}

impl Provisioner for UsersService {
    fn find<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<LocalUser>, String>> {
        Box::pin(async move {
            self.store()
                .user_by_name(username)
                .await
                .map(|u| u.map(|(u, _)| local(u)))
                .map_err(|e| e.to_string())
        })
    }

    fn create<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<LocalUser, String>> {
        Box::pin(async move {
            self.create_user(NewUser {
                username: username.to_string(),
                password: None,
                scopes: Some(Vec::new()),
                ..NewUser::default()
            })
            .await
            .map(local)
            .map_err(|e| e.to_string())
        })
    }
}
