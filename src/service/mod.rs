//! The use cases under every transport: running a trigger, calling the targets of an execution,
//! and the durable delivery queue. They take narrow dependencies (the store, the sandbox pool, the
//! v2 runtime, metrics) and never the HTTP layer, so that they can be driven from tests, from the
//! REST gateway and Connect alike.

pub mod execute;
pub mod queue;
pub mod targets;
