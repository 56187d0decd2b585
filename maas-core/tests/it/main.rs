//! maas-core's integration tests: the public API only.

mod deploycfg;
mod lifecycle_table;
mod walkthrough;
