//! Roles, permissions and API-token scopes. The matrix is documented in `docs/security.md`;
//! a test keeps the two in step.

pub use haechi_core::platform::{Role, Scope};

/// What a use case needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read and change one's own account, sessions, tokens, MFA.
    OwnAccount,
    /// Read the access and audit logs.
    ReadLogs,
    /// List users, change roles, disable accounts.
    ManageUsers,
    /// Require MFA for a role.
    ManagePolicies,
    /// Own scenarios and runs: create, edit, share, run, read reports.
    Simulate,
    /// Own mock accounts: open them, place and cancel orders.
    Trade,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::OwnAccount,
        Permission::ReadLogs,
        Permission::ManageUsers,
        Permission::ManagePolicies,
        Permission::Simulate,
        Permission::Trade,
    ];

    /// Whether an API token must carry the `admin` scope to use this permission.
    #[must_use]
    pub const fn is_admin(self) -> bool {
        !matches!(self, Permission::OwnAccount | Permission::Simulate | Permission::Trade)
    }
}

/// The permission matrix.
#[must_use]
pub const fn allows(role: Role, perm: Permission) -> bool {
    match perm {
        Permission::OwnAccount => true,
        Permission::ReadLogs => matches!(role, Role::Admin | Role::Auditor),
        Permission::ManageUsers | Permission::ManagePolicies => matches!(role, Role::Admin),
        // Auditors review; they do not trade or simulate.
        Permission::Simulate | Permission::Trade => !matches!(role, Role::Auditor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm_name(p: Permission) -> &'static str {
        match p {
            Permission::OwnAccount => "own_account",
            Permission::ReadLogs => "read_logs",
            Permission::ManageUsers => "manage_users",
            Permission::ManagePolicies => "manage_policies",
            Permission::Simulate => "simulate",
            Permission::Trade => "trade",
        }
    }

    /// `docs/security.md` documents the matrix; this keeps the two from drifting apart.
    #[test]
    fn documented_matrix_matches_the_code() {
        let doc = include_str!("../../../docs/security.md");
        let table = doc.split("<!-- permission-matrix").nth(1).expect("matrix marker in docs/security.md");
        let mut lines = table.lines().filter(|l| l.starts_with('|'));
        let header: Vec<&str> = lines.next().unwrap().split('|').map(str::trim).collect();
        let roles: Vec<Role> = header[2..6].iter().map(|r| Role::parse(r).unwrap()).collect();
        let mut seen = 0;
        for line in lines.skip(1) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let Some(perm) = Permission::ALL.into_iter().find(|p| perm_name(*p) == cells[1]) else { break };
            for (role, cell) in roles.iter().zip(&cells[2..6]) {
                assert_eq!(allows(*role, perm), *cell == "yes", "{} for {}", cells[1], role.as_str());
            }
            seen += 1;
        }
        assert_eq!(seen, Permission::ALL.len());
    }
}
