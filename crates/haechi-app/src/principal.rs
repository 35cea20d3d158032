//! Who is acting. A [`Principal`] carries the account as the use cases may show it: never the
//! password hash, the TOTP secret or a recovery code.

use crate::error::{AppError, AppResult};
use crate::rbac::{Permission, allows};
use haechi_core::platform::{Role, Scope, TokenId, UserId};

/// A user account without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub mfa_enabled: bool,
    pub disabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<&haechi_db::User> for Account {
    fn from(u: &haechi_db::User) -> Account {
        Account {
            id: UserId(u.id),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            // A role name the code does not know gets the least privileged role with a trade.
            role: Role::parse(&u.role).unwrap_or(Role::Investor),
            mfa_enabled: u.mfa_enabled,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthVia {
    /// A browser session. `id_hash` identifies the row; `csrf_token` is what forms must echo.
    Session { id_hash: String, handle: String, csrf_token: String },
    /// An API token and its scopes.
    Token { id: TokenId, scopes: Vec<Scope> },
    /// A command run on the server (CLI, demo): the operator is trusted like the account.
    Local,
}

/// An authenticated account and how it authenticated.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Account,
    pub via: AuthVia,
}

impl Principal {
    /// A principal for commands run on the server itself.
    #[must_use]
    pub fn local(user: Account) -> Principal {
        Principal { user, via: AuthVia::Local }
    }

    #[must_use]
    pub fn id(&self) -> UserId {
        self.user.id
    }

    #[must_use]
    pub fn role(&self) -> Role {
        self.user.role
    }

    /// Checks the role matrix and, for API tokens, the `admin` scope on admin permissions.
    ///
    /// # Errors
    /// [`AppError::Forbidden`] when either says no.
    pub fn require(&self, perm: Permission) -> AppResult<()> {
        if !allows(self.user.role, perm) {
            return Err(AppError::Forbidden("your role does not allow this"));
        }
        if let AuthVia::Token { scopes, .. } = &self.via
            && perm.is_admin()
            && !scopes.contains(&Scope::Admin)
        {
            return Err(AppError::Forbidden("this API token lacks the admin scope"));
        }
        Ok(())
    }

    /// Account-security operations (MFA, sessions, tokens, the password) are for the person:
    /// a signed-in browser session, or a command on the server. An API token of any scope is
    /// refused, so a leaked `trade` token cannot enrol its own authenticator, mint tokens or
    /// end the owner's sessions.
    ///
    /// # Errors
    /// [`AppError::Forbidden`] for an API token.
    pub fn require_person(&self) -> AppResult<()> {
        self.require(Permission::OwnAccount)?;
        match self.via {
            AuthVia::Session { .. } | AuthVia::Local => Ok(()),
            AuthVia::Token { .. } => {
                Err(AppError::Forbidden("account security needs a signed-in browser session, not an API token"))
            }
        }
    }

    /// The session's CSRF token, when authenticated by a browser session.
    #[must_use]
    pub fn csrf_token(&self) -> Option<&str> {
        match &self.via {
            AuthVia::Session { csrf_token, .. } => Some(csrf_token),
            _ => None,
        }
    }
}
