//! postern-ssm against the spec's worked examples and a simulated agent over a lossy link.

mod agent;
mod channel;
mod frame;
mod link;
