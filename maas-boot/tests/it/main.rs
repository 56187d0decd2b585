//! Integration tests of maas-boot's public API, one module per service.

mod dhcp;
