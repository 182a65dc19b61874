//! A local AWS on 127.0.0.1 for Postern's tests, benchmarks and demos.
#![forbid(unsafe_code)]
