//! The memory that delivery bodies being read may hold at once, counted in
//! KiB as bytes actually arrive (never by what a client declares), with a
//! share per peer address: a client that trickles holds only what it has
//! sent, and many slow or unsigned connections from one address can take
//! at most [`PEER_SHARE`] of the budget (never less than one largest
//! body), so signed deliveries from elsewhere keep flowing. An IPv6 peer is
//! its /64: one host holds a whole /64. (Behind a proxy every request
//! shares the proxy's address, and the share protects nothing: the proxy
//! must bound slow clients itself.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The fraction of the budget one peer address may hold: a half.
pub const PEER_SHARE: (usize, usize) = (1, 2);

/// The peer a budget share belongs to: the address, or for IPv6 its /64
/// (a host is given a whole /64 and can use any address in it).
pub fn peer_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1_u128 << 64) - 1))),
        },
    }
}

/// Why more could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The whole budget is in use.
    Overloaded,
    /// This peer holds its share.
    PeerShare,
}

#[derive(Debug)]
pub struct BodyBudget {
    kib: Arc<Semaphore>,
    peer_share_kib: usize,
    held_by_peer: Mutex<HashMap<IpAddr, usize>>,
}

impl BodyBudget {
    pub fn new(total_kib: usize) -> Arc<Self> {
        let share =
            (total_kib * PEER_SHARE.0 / PEER_SHARE.1).max(coliseum_domain::passport::MAX_BODY_BYTES.div_ceil(1024));
        Self::with_share(total_kib, share)
    }

    fn with_share(total_kib: usize, peer_share_kib: usize) -> Arc<Self> {
        Arc::new(Self {
            kib: Arc::new(Semaphore::new(total_kib)),
            peer_share_kib,
            held_by_peer: Mutex::new(HashMap::new()),
        })
    }

    /// A reservation of nothing yet for `peer`, grown as its body arrives.
    pub fn start(self: &Arc<Self>, peer: IpAddr) -> Reservation {
        Reservation {
            budget: self.clone(),
            peer,
            kib: 0,
            permit: None,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.held_by_peer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What one request holds; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    peer: IpAddr,
    kib: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// Holds enough for `bytes` in all, or refuses and holds what it held.
    pub fn grow_to(&mut self, bytes: usize) -> Result<(), Refused> {
        let wanted = bytes.div_ceil(1024);
        let more = wanted.saturating_sub(self.kib);
        if more == 0 {
            return Ok(());
        }
        let mut held = self.budget.held();
        let by_peer = held.get(&self.peer).copied().unwrap_or(0);
        if by_peer + more > self.budget.peer_share_kib {
            return Err(Refused::PeerShare);
        }
        let permits = u32::try_from(more).map_err(|_| Refused::Overloaded)?;
        let permit = self
            .budget
            .kib
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| Refused::Overloaded)?;
        // Counted only once held: a refused peer leaves nothing behind.
        held.insert(self.peer, by_peer + more);
        self.kib = wanted;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.kib == 0 {
            return;
        }
        let mut held = self.budget.held();
        if let Some(by_peer) = held.get_mut(&self.peer) {
            *by_peer = by_peer.saturating_sub(self.kib);
            if *by_peer == 0 {
                held.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_peer_holds_at_most_its_share_and_others_keep_the_rest() {
        let budget = BodyBudget::with_share(100, 50);
        let mut greedy = budget.start(peer(1));
        greedy.grow_to(50 * 1024).expect("half");
        assert_eq!(greedy.grow_to(50 * 1024 + 1), Err(Refused::PeerShare));
        let mut second = budget.start(peer(1));
        assert_eq!(
            second.grow_to(1),
            Err(Refused::PeerShare),
            "a second request of the same peer"
        );
        let mut other = budget.start(peer(2));
        other.grow_to(50 * 1024).expect("another peer's half");
        assert_eq!(budget.start(peer(3)).grow_to(1), Err(Refused::Overloaded));
        drop(greedy);
        budget.start(peer(3)).grow_to(1024).expect("released on drop");
        assert_eq!(budget.kib.available_permits(), 50);
        drop(other);
        assert!(budget.held().is_empty(), "nothing is left behind");
        assert_eq!(budget.kib.available_permits(), 100);
    }

    #[test]
    fn a_refused_peer_leaves_nothing_behind_and_one_body_always_fits_a_share() {
        let budget = BodyBudget::new(1500);
        assert_eq!(budget.peer_share_kib, 1024, "a share holds the largest body");
        let mut first = budget.start(peer(1));
        first.grow_to(1024 * 1024).expect("one whole body");
        assert_eq!(budget.start(peer(2)).grow_to(600 * 1024), Err(Refused::Overloaded));
        assert_eq!(budget.held().len(), 1, "only the peer that holds something");
    }

    #[test]
    fn an_ipv6_peer_is_its_64_and_a_mapped_ipv4_address_its_ipv4_one() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("v6");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("v6");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("v6");
        assert_eq!(peer_of(a), peer_of(b));
        assert_ne!(peer_of(a), peer_of(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("mapped");
        assert_eq!(peer_of(mapped), IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn growth_is_counted_in_whole_kib_of_what_arrived() {
        let budget = BodyBudget::with_share(10, 10);
        let mut reservation = budget.start(peer(1));
        reservation.grow_to(1).expect("one KiB");
        reservation.grow_to(1024).expect("still one");
        assert_eq!(budget.kib.available_permits(), 9);
        reservation.grow_to(1025).expect("two");
        assert_eq!(budget.kib.available_permits(), 8);
    }
}
