//! maas-core's integration tests: the public API only.

mod lifecycle_table;
mod walkthrough;
