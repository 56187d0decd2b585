//! Deployment configuration: layouts, rendering, and the real validators
//! (cloud-init's schema, netplan generate, curtin's storage schema).

mod errors;
mod fixtures;
mod matrix;
mod tools;
mod validators;
