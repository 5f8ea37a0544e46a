use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[allow(clippy::enum_variant_names)]
pub enum Role {
    #[serde(rename = "IAM_OWNER")]
    IamOwner,
    #[serde(rename = "ORG_OWNER")]
    OrgOwner,
    #[serde(rename = "ORG_VIEWER")]
    OrgViewer,
    #[serde(rename = "ORG_EXECUTOR")]
    OrgExecutor,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::IamOwner, Role::OrgOwner, Role::OrgViewer, Role::OrgExecutor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::IamOwner => "IAM_OWNER",
            Role::OrgOwner => "ORG_OWNER",
            Role::OrgViewer => "ORG_VIEWER",
            Role::OrgExecutor => "ORG_EXECUTOR",
        }
    }

    /// The role's number in the `TokenRole` protobuf enum (0 is unspecified).
    pub fn from_number(n: i64) -> Option<Role> {
        usize::try_from(n).ok()?.checked_sub(1).and_then(|i| Role::ALL.get(i).copied())
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(s))
    }
}

/// What an RPC needs from the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Reading actions, flows and runs.
    Read,
    /// Creating, changing and deleting actions and flows; testing scripts.
    Write,
    /// Executing triggers.
    Execute,
    /// Any authenticated role (GetMyOrg).
    Any,
    /// Instance resources: orgs, tokens, v2.
    Instance,
}

impl Permission {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Permission::Any => true,
            Permission::Instance => role == Role::IamOwner,
            Permission::Read => matches!(role, Role::IamOwner | Role::OrgOwner | Role::OrgViewer),
            Permission::Write => matches!(role, Role::IamOwner | Role::OrgOwner),
            Permission::Execute => {
                matches!(role, Role::IamOwner | Role::OrgOwner | Role::OrgExecutor)
            }
        }
    }
}
