//! maas-core's integration tests: the public API only.

mod deploycfg;
