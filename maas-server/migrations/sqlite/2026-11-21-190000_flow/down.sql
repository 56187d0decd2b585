DROP TABLE rack_unknown_macs;
DROP TABLE rack_leases;
DROP TABLE jobs;
DROP TABLE operations;
