//! `postern-sandbox serve`: a local AWS on 127.0.0.1.
#![forbid(unsafe_code)]

fn main() {}
