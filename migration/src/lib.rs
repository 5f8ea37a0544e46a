//! Database migrations, applied at server start (and by `actionsd migrate`).

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_init;
mod m20261123_000002_runs;
mod m20261123_000003_action_search_index;
mod m20261123_000004_targets;
mod m20261123_000005_v2_delivery;
mod m20261202_000006_node_leases;
pub mod m20261202_000007_refold_names;
mod m20261202_000008_connector;
mod m20261202_000009_run_connector;
mod m20261202_000010_connector_deliveries;
mod m20261203_000011_authoring;
mod m20261203_000012_replay;
mod m20261205_000013_tail_leases;
mod m20261206_000014_target_name_hash_index;
mod m20261206_000015_connection_rotation_lease;
mod m20261207_000016_open_deliveries_order_index;
pub mod m20261207_000017_timestamps_in_range;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_init::Migration),
            Box::new(m20261123_000002_runs::Migration),
            Box::new(m20261123_000003_action_search_index::Migration),
            Box::new(m20261123_000004_targets::Migration),
            Box::new(m20261123_000005_v2_delivery::Migration),
            Box::new(m20261202_000006_node_leases::Migration),
            Box::new(m20261202_000007_refold_names::Migration),
            Box::new(m20261202_000008_connector::Migration),
            Box::new(m20261202_000009_run_connector::Migration),
            Box::new(m20261202_000010_connector_deliveries::Migration),
            Box::new(m20261203_000011_authoring::Migration),
            Box::new(m20261203_000012_replay::Migration),
            Box::new(m20261205_000013_tail_leases::Migration),
            Box::new(m20261206_000014_target_name_hash_index::Migration),
            Box::new(m20261206_000015_connection_rotation_lease::Migration),
            Box::new(m20261207_000016_open_deliveries_order_index::Migration),
            Box::new(m20261207_000017_timestamps_in_range::Migration),
        ]
    }
}
