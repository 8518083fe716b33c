//! The memory that delivery bodies being read may hold at once, counted in
//! KiB as bytes actually arrive (never by what a client declares).
//!
//! Two defences keep signed deliveries flowing while others hold the budget:
//! - **A share per peer address.** Many slow or unsigned connections from
//!   one address take at most [`PEER_SHARE`] of the budget (never less than
//!   one largest body). An IPv6 peer is its /64: one host holds a whole /64.
//! - **A pool for proven senders.** Half of the budget is kept for peers
//!   whose delivery verified in the last [`PROVEN_FOR`]: a sender that
//!   really sends. Many addresses together can fill the open half, never
//!   this one, since filling it takes the signing key.
//!
//! Behind a proxy every request shares the proxy's address, and neither
//! defence tells senders apart: the proxy must bound slow clients itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The fraction of the budget one peer address may hold: a half.
pub const PEER_SHARE: (usize, usize) = (1, 2);
/// How long a verified delivery lets its peer use the proven pool.
pub const PROVEN_FOR: Duration = Duration::from_secs(15 * 60);
/// Proven peers remembered at most; past it, expired ones are forgotten
/// and new ones wait for room (each needs a verified delivery to enter).
const MAX_PROVEN_PEERS: usize = 4096;

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
    /// Every pool this peer may use is spent.
    Overloaded,
    /// This peer holds its share.
    PeerShare,
}

#[derive(Debug)]
pub struct BodyBudget {
    /// For anyone.
    open: Arc<Semaphore>,
    /// For proven peers only, who use it before the open pool.
    proven: Arc<Semaphore>,
    peer_share_kib: usize,
    proven_for: Duration,
    held_by_peer: Mutex<HashMap<IpAddr, usize>>,
    proven_peers: Mutex<HashMap<IpAddr, Instant>>,
}

impl BodyBudget {
    pub fn new(total_kib: usize) -> Arc<Self> {
        let largest_body = coliseum_domain::passport::MAX_BODY_BYTES.div_ceil(1024);
        let share = (total_kib * PEER_SHARE.0 / PEER_SHARE.1).max(largest_body);
        // Half for proven peers, but never so much that a first delivery
        // of the largest size cannot be read.
        let proven = (total_kib / 2).min(total_kib.saturating_sub(largest_body));
        Self::with_pools(total_kib - proven, proven, share, PROVEN_FOR)
    }

    fn with_pools(open_kib: usize, proven_kib: usize, peer_share_kib: usize, proven_for: Duration) -> Arc<Self> {
        Arc::new(Self {
            open: Arc::new(Semaphore::new(open_kib)),
            proven: Arc::new(Semaphore::new(proven_kib)),
            peer_share_kib,
            proven_for,
            held_by_peer: Mutex::new(HashMap::new()),
            proven_peers: Mutex::new(HashMap::new()),
        })
    }

    /// A reservation of nothing yet for `peer`, grown as its body arrives.
    pub fn start(self: &Arc<Self>, peer: IpAddr) -> Reservation {
        Reservation {
            proven: self.is_proven(peer),
            budget: self.clone(),
            peer,
            kib: 0,
            open_permit: None,
            proven_permit: None,
        }
    }

    /// `peer` just sent a delivery whose signature verified.
    pub fn prove(&self, peer: IpAddr) {
        let now = Instant::now();
        let mut proven = lock(&self.proven_peers);
        if proven.len() >= MAX_PROVEN_PEERS && !proven.contains_key(&peer) {
            proven.retain(|_, at| now.duration_since(*at) < self.proven_for);
            if proven.len() >= MAX_PROVEN_PEERS {
                return;
            }
        }
        proven.insert(peer, now);
    }

    fn is_proven(&self, peer: IpAddr) -> bool {
        lock(&self.proven_peers)
            .get(&peer)
            .is_some_and(|at| at.elapsed() < self.proven_for)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What one request holds; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    peer: IpAddr,
    /// Whether the peer was proven when its request began.
    proven: bool,
    kib: usize,
    open_permit: Option<OwnedSemaphorePermit>,
    proven_permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// Holds enough for `bytes` in all, or refuses and holds what it held.
    pub fn grow_to(&mut self, bytes: usize) -> Result<(), Refused> {
        let wanted = bytes.div_ceil(1024);
        let more = wanted.saturating_sub(self.kib);
        if more == 0 {
            return Ok(());
        }
        let mut held = lock(&self.budget.held_by_peer);
        let by_peer = held.get(&self.peer).copied().unwrap_or(0);
        if by_peer + more > self.budget.peer_share_kib {
            return Err(Refused::PeerShare);
        }
        let permits = u32::try_from(more).map_err(|_| Refused::Overloaded)?;
        let from = |pool: &Arc<Semaphore>| pool.clone().try_acquire_many_owned(permits).ok();
        let (permit, slot) = match self.proven.then(|| from(&self.budget.proven)).flatten() {
            Some(permit) => (permit, &mut self.proven_permit),
            None => (
                from(&self.budget.open).ok_or(Refused::Overloaded)?,
                &mut self.open_permit,
            ),
        };
        // Counted only once held: a refused peer leaves nothing behind.
        held.insert(self.peer, by_peer + more);
        self.kib = wanted;
        match slot {
            Some(held) => held.merge(permit),
            None => *slot = Some(permit),
        }
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.kib == 0 {
            return;
        }
        let mut held = lock(&self.budget.held_by_peer);
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
        let budget = BodyBudget::with_pools(100, 0, 50, PROVEN_FOR);
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
        assert_eq!(budget.open.available_permits(), 50);
        drop(other);
        assert!(lock(&budget.held_by_peer).is_empty(), "nothing is left behind");
        assert_eq!(budget.open.available_permits(), 100);
    }

    #[test]
    fn a_refused_peer_leaves_nothing_behind_and_one_body_always_fits_a_share() {
        let budget = BodyBudget::new(1500);
        assert_eq!(budget.peer_share_kib, 1024, "a share holds the largest body");
        assert_eq!(budget.open.available_permits(), 1024, "so does the open pool");
        let mut first = budget.start(peer(1));
        first.grow_to(1024 * 1024).expect("one whole body");
        assert_eq!(budget.start(peer(2)).grow_to(600 * 1024), Err(Refused::Overloaded));
        assert_eq!(
            lock(&budget.held_by_peer).len(),
            1,
            "only the peer that holds something"
        );
    }

    #[test]
    fn many_unproven_peers_fill_the_open_pool_and_never_the_proven_one() {
        let budget = BodyBudget::with_pools(100, 50, 60, PROVEN_FOR);
        let sender = peer(1);
        budget.prove(sender);
        let attackers: Vec<Reservation> = (2..4)
            .map(|last| {
                let mut reservation = budget.start(peer(last));
                reservation.grow_to(50 * 1024).expect("half of the open pool");
                reservation
            })
            .collect();
        assert_eq!(budget.start(peer(4)).grow_to(1), Err(Refused::Overloaded));
        let mut delivery = budget.start(sender);
        delivery.grow_to(50 * 1024).expect("the proven pool");
        assert_eq!(
            delivery.grow_to(51 * 1024),
            Err(Refused::Overloaded),
            "both pools spent"
        );
        drop(attackers);
        delivery
            .grow_to(60 * 1024)
            .expect("the open pool once the proven one is spent");
        let available = |budget: &BodyBudget| (budget.proven.available_permits(), budget.open.available_permits());
        assert_eq!(available(&budget), (0, 90));
        assert_eq!(
            delivery.grow_to(61 * 1024),
            Err(Refused::PeerShare),
            "a proven peer keeps to its share"
        );
        drop(delivery);
        assert_eq!(available(&budget), (50, 100), "both released");
    }

    #[test]
    fn a_proof_expires() {
        let budget = BodyBudget::with_pools(0, 10, 10, Duration::ZERO);
        budget.prove(peer(1));
        assert_eq!(budget.start(peer(1)).grow_to(1), Err(Refused::Overloaded));
        let budget = BodyBudget::with_pools(0, 10, 10, PROVEN_FOR);
        budget.prove(peer(1));
        budget.start(peer(1)).grow_to(1).expect("proven");
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
        let budget = BodyBudget::with_pools(10, 0, 10, PROVEN_FOR);
        let mut reservation = budget.start(peer(1));
        reservation.grow_to(1).expect("one KiB");
        reservation.grow_to(1024).expect("still one");
        assert_eq!(budget.open.available_permits(), 9);
        reservation.grow_to(1025).expect("two");
        assert_eq!(budget.open.available_permits(), 8);
    }
}
