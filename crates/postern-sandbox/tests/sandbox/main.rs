//! The sandbox driven by independent clients: the AWS SDK for Rust here (retries off, endpoint
//! overridden), the AWS CLI and moto in `tests/peers` (see the Makefile).

mod admin;
mod cloudtrail;
mod ec2;
mod http;
mod router_fuzz;
mod ssm;
mod sts;
mod support;
