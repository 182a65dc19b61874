//! The operations of each service, over the sandbox's [`World`](crate::world::World).

pub mod sts;

use crate::iam::Caller;

/// One authenticated call, as the operations see it.
#[derive(Debug)]
pub struct Call<'a> {
    /// Who is calling.
    pub caller: &'a Caller,
    /// The region the request was signed for.
    pub region: &'a str,
    /// The request id the answer carries.
    pub request_id: &'a str,
    /// The client's address.
    pub source_ip: &'a str,
    /// The client's User-Agent.
    pub user_agent: &'a str,
}
