//! The domain enums stored in the tables, with the numbers and strings the tables have always
//! held (ZITADEL's numbering where it has one). The API's wire enums convert from and to these.

use sea_orm::entity::prelude::*;

/// An action's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i32", db_type = "Integer")]
pub enum ActionState {
    #[sea_orm(num_value = 1)]
    Inactive,
    #[sea_orm(num_value = 2)]
    Active,
}

/// How one action run (or a whole trigger) ended; a run not decided yet is "not run".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i32", db_type = "Integer")]
pub enum Outcome {
    #[sea_orm(num_value = 1)]
    Succeeded,
    #[sea_orm(num_value = 2)]
    Failed,
    /// The action is inactive.
    #[sea_orm(num_value = 3)]
    Skipped,
    /// An earlier action failed the trigger.
    #[default]
    #[sea_orm(num_value = 4)]
    NotRun,
}

/// Where a delivery of the durable queue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i32", db_type = "Integer")]
pub enum DeliveryState {
    #[sea_orm(num_value = 1)]
    Pending,
    #[sea_orm(num_value = 2)]
    Succeeded,
    /// Failed; a retry is scheduled.
    #[sea_orm(num_value = 3)]
    Failed,
    /// Given up (max age passed, or the target was removed).
    #[sea_orm(num_value = 4)]
    Dead,
}

/// How a target is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum TargetKind {
    /// Called and waited for; the answer's status matters, its body does not.
    #[sea_orm(string_value = "rest_webhook")]
    RestWebhook,
    /// Called and waited for; the answer's body is used.
    #[sea_orm(string_value = "rest_call")]
    RestCall,
    /// Queued in the durable delivery queue.
    #[sea_orm(string_value = "rest_async")]
    RestAsync,
}

/// How a target's payload is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i32", db_type = "Integer")]
pub enum PayloadType {
    #[sea_orm(num_value = 1)]
    Json,
    #[sea_orm(num_value = 2)]
    Jwt,
    #[sea_orm(num_value = 3)]
    Jwe,
}

/// Whether a connector connection runs actions (inactive: every verified call passes through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i32", db_type = "Integer")]
pub enum ConnectionState {
    #[sea_orm(num_value = 1)]
    Active,
    #[sea_orm(num_value = 2)]
    Inactive,
}

/// What a connector call answers when the actions cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i32", db_type = "Integer")]
pub enum FailMode {
    /// The forwarded error (ZITADEL aborts the operation when the target interrupts on error).
    #[sea_orm(num_value = 1)]
    Closed,
    /// Pass-through (as if no target were configured).
    #[sea_orm(num_value = 2)]
    Open,
}

impl Outcome {
    /// The wire name, also the metrics label (`OUTCOME_SUCCEEDED`, …).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Succeeded => "OUTCOME_SUCCEEDED",
            Outcome::Failed => "OUTCOME_FAILED",
            Outcome::Skipped => "OUTCOME_SKIPPED",
            Outcome::NotRun => "OUTCOME_NOT_RUN",
        }
    }
}

impl TargetKind {
    /// The metrics label and stored value (`rest_webhook`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::RestWebhook => "rest_webhook",
            TargetKind::RestCall => "rest_call",
            TargetKind::RestAsync => "rest_async",
        }
    }

    /// ZITADEL's number for the type (webhook 0, call 1, async 2): what it sorts targets by.
    pub fn zitadel_number(self) -> u8 {
        match self {
            TargetKind::RestWebhook => 0,
            TargetKind::RestCall => 1,
            TargetKind::RestAsync => 2,
        }
    }
}
