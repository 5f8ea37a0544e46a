//! SeaORM entities: the read tables and the event log. No HTTP or serialization types here.
//! Timestamps are microseconds since the Unix epoch; ids are time-ordered 64-bit numbers.

pub mod action;
pub mod action_secret;
pub mod action_setting;
pub mod action_version;
pub mod connection;
pub mod connection_org_link;
pub mod connection_rejection;
pub mod delivery;
pub mod enums;
pub mod event;
pub mod execution;
pub mod flow;
pub mod flow_trigger_action;
pub mod fold;
pub mod fold_table;
pub mod node;
pub mod org;
pub mod recorded_context;
pub mod run;
pub mod setting;
pub mod target;
pub mod target_key;
pub mod token;
