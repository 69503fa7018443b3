//! Several requests in one round trip: one datagram out, every ack read
//! back before [`Batch::run`] returns. Made for configuring a container's
//! interface from inside its namespace (lo up, eth0 up, address, default
//! route), where nothing else uses the socket meanwhile.

use std::net::Ipv4Addr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;

use super::socket::{End, Incoming};
use super::{Error, Netlink, Result, address, link, route};

/// Requests queued on a [`Netlink`], sent together by [`Batch::run`].
///
/// The kernel handles them in order and answers each; it goes on after a
/// refusal, so a later request may fail because of an earlier one (a route
/// whose address was refused). `run` reports the first refusal.
#[derive(Debug)]
pub struct Batch<'a> {
    netlink: &'a mut Netlink,
    first: u32,
    what: Vec<String>,
    invalid: Option<Error>,
}

impl Netlink {
    /// Starts a batch of requests on this socket.
    pub fn batch(&mut self) -> Batch<'_> {
        self.out.clear();
        Batch {
            netlink: self,
            first: 0,
            what: Vec::new(),
            invalid: None,
        }
    }
}

impl Batch<'_> {
    /// Queues [`Netlink::set_up`].
    pub fn set_up(&mut self, index: u32) -> &mut Self {
        self.push(
            NLM_F_ACK,
            link::set_up_request(index),
            format!("setting link {index} up"),
        )
    }

    /// Queues [`Netlink::add_address`].
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix_len: u8) -> &mut Self {
        let what = format!("adding address {addr}/{prefix_len} to link {index}");
        match address::new_address_message(index, addr, prefix_len) {
            Ok(message) => self.push(
                NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                RouteNetlinkMessage::NewAddress(message),
                what,
            ),
            Err(reason) => {
                self.invalid
                    .get_or_insert(Error::InvalidArgument { what, reason });
                self
            }
        }
    }

    /// Queues [`Netlink::add_default_route`].
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> &mut Self {
        self.push(
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewRoute(route::default_route_message(gateway)),
            format!("adding the default route via {gateway}"),
        )
    }

    /// How many requests are queued.
    pub fn len(&self) -> usize {
        self.what.len()
    }

    pub fn is_empty(&self) -> bool {
        self.what.is_empty()
    }

    /// Sends every queued request in one datagram and reads every answer.
    /// Returns the first refusal, named after its request; nothing is sent
    /// when a request was invalid (a prefix length over 32).
    pub fn run(self) -> Result<()> {
        if let Some(invalid) = self.invalid {
            self.netlink.out.clear();
            return Err(invalid);
        }
        if self.what.is_empty() {
            return Ok(());
        }
        let count = self.what.len() as u32;
        let whole = || format!("{} (in a batch of {count})", self.what.join(", "));
        self.netlink.send(&whole)?;
        let mut refused: Option<(u32, End)> = None;
        let first = self.first;
        self.netlink
            .receive(first, count, &whole, &mut |seq, incoming| {
                if let Incoming::End(end @ End::Refused { .. }) = incoming {
                    // Acks come in order; keep the earliest refusal anyway.
                    if refused
                        .as_ref()
                        .is_none_or(|(s, _)| seq.wrapping_sub(first) < s.wrapping_sub(first))
                    {
                        refused = Some((seq, end));
                    }
                }
                Ok(())
            })?;
        match refused {
            Some((seq, End::Refused { errno, detail })) => Err(Error::Kernel {
                what: self.what[seq.wrapping_sub(first) as usize].clone(),
                errno,
                detail,
            }),
            _ => Ok(()),
        }
    }

    fn push(&mut self, flags: u16, message: RouteNetlinkMessage, what: String) -> &mut Self {
        let seq = self.netlink.queue(flags, message);
        if self.what.is_empty() {
            self.first = seq;
        }
        self.what.push(what);
        self
    }
}
