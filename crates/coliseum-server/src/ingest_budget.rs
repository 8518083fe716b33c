//! The memory that delivery bodies being read may hold at once, counted in
//! KiB as bytes actually arrive (never by what a client declares), with a
//! share per peer address: a client that trickles holds only what it has
//! sent, and many slow or unsigned connections from one address can take
//! at most [`PEER_SHARE`] of the budget, so signed deliveries from
//! elsewhere keep flowing. (Behind a proxy every request shares the
//! proxy's address, and the share is the whole budget's fraction only.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The fraction of the budget one peer address may hold: a half.
pub const PEER_SHARE: (usize, usize) = (1, 2);

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
        Arc::new(Self {
            kib: Arc::new(Semaphore::new(total_kib)),
            peer_share_kib: (total_kib * PEER_SHARE.0 / PEER_SHARE.1).max(1),
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
        let by_peer = held.entry(self.peer).or_default();
        if *by_peer + more > self.budget.peer_share_kib {
            return Err(Refused::PeerShare);
        }
        let permits = u32::try_from(more).map_err(|_| Refused::Overloaded)?;
        let permit = self
            .budget
            .kib
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| Refused::Overloaded)?;
        *by_peer += more;
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
        let budget = BodyBudget::new(100);
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
    fn growth_is_counted_in_whole_kib_of_what_arrived() {
        let budget = BodyBudget::new(10);
        let mut reservation = budget.start(peer(1));
        reservation.grow_to(1).expect("one KiB");
        reservation.grow_to(1024).expect("still one");
        assert_eq!(budget.kib.available_permits(), 9);
        reservation.grow_to(1025).expect("two");
        assert_eq!(budget.kib.available_permits(), 8);
    }
}
