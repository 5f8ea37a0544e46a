//! The integration tests, linked into one binary (one link on a 2-core machine instead of one per
//! file). Each module is one area; `common` holds the shared harness.

#[macro_use]
mod common;

mod actions;
mod auth;
mod compat_corpus;
mod connect;
mod connector;
mod connector_api;
mod connector_call;
mod connector_parity;
mod deliveries;
mod delivery_processes;
mod durability;
mod flows;
mod folding;
mod functions;
mod grpc;
mod interception;
mod node_sdk;
mod openapi;
mod public_keys;
mod reliability;
mod replay;
mod robustness;
mod runs;
mod runtime_triggers;
mod secrets;
mod service;
mod settings_docs;
mod smoke;
mod tail;
mod target_ssrf;
mod targets;
mod top_level;
mod types;
mod versions;
