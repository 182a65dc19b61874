//! The sandbox driven by independent clients: the AWS SDK for Rust here (retries off, endpoint
//! overridden), the AWS CLI and moto in `tests/peers` (see the Makefile).

mod http;
mod sts;
mod support;
