//! Plain types and rules shared by the API, the store and (later) the runtime.

pub mod bytes;
pub mod case;
pub mod duration;
pub mod execution;
pub mod flow;
pub mod fold;
pub mod id;
pub mod json_text;
pub mod nesting;
pub mod role;
pub mod time;

pub use duration::Duration;
pub use entity::enums::{ActionState, DeliveryState, Outcome, PayloadType, TargetKind};
pub use flow::{FlowType, Trigger, TriggerType};
pub use role::Role;
