//! The memory that delivery bodies being read may hold at once, counted in
//! KiB as bytes actually arrive (never by what a client declares).
//!
//! Two pools keep signed deliveries flowing while others hold memory:
//! - **The open pool**, for anyone, of which one peer address holds at most
//!   a quarter (never less than one largest body): a few addresses with
//!   slow or unsigned bodies cannot fill it. An IPv6 peer is its /64: one
//!   host holds a whole /64.
//! - **The proven pool**, for peers whose delivery verified in the last
//!   [`PROVEN_FOR`] (a sender that really sends), used before the open one,
//!   of which one peer holds at most half. Many addresses together can fill
//!   the open pool, never this one: that takes the signing key.
//!
//! A sender's first delivery after a restart, or after a day of silence,
//! goes through the open pool. Behind a proxy, peers are told apart only
//! when it is named in `--trusted-proxies` ([`crate::client_address`]);
//! either way the proxy must bound slow clients itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a verified delivery lets its peer use the proven pool: a day,
/// so that a sender quiet overnight is still known.
pub const PROVEN_FOR: Duration = Duration::from_secs(24 * 60 * 60);
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

/// KiB that requests hold, and how many of them one peer may hold.
#[derive(Debug)]
struct Pool {
    kib: Arc<Semaphore>,
    share_kib: usize,
}

impl Pool {
    fn new(kib: usize, share_kib: usize) -> Self {
        Self {
            kib: Arc::new(Semaphore::new(kib)),
            share_kib,
        }
    }

    fn take(&self, kib: usize) -> Result<Option<OwnedSemaphorePermit>, Refused> {
        if kib == 0 {
            return Ok(None);
        }
        let permits = u32::try_from(kib).map_err(|_| Refused::Overloaded)?;
        self.kib
            .clone()
            .try_acquire_many_owned(permits)
            .map(Some)
            .map_err(|_| Refused::Overloaded)
    }
}

/// What one peer holds of each pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    open: usize,
    proven: usize,
}

#[derive(Debug)]
pub struct BodyBudget {
    open: Pool,
    proven: Pool,
    proven_for: Duration,
    held_by_peer: Mutex<HashMap<IpAddr, Held>>,
    proven_peers: Mutex<HashMap<IpAddr, Instant>>,
}

impl BodyBudget {
    pub fn new(total_kib: usize) -> Arc<Self> {
        let largest_body = coliseum_domain::passport::MAX_BODY_BYTES.div_ceil(1024);
        // Half for proven peers, but never so much that a first delivery
        // of the largest size cannot be read.
        let proven = (total_kib / 2).min(total_kib.saturating_sub(largest_body));
        let open = total_kib - proven;
        Self::with_pools(
            Pool::new(open, (open / 4).max(largest_body)),
            Pool::new(proven, (proven / 2).max(largest_body)),
            PROVEN_FOR,
        )
    }

    fn with_pools(open: Pool, proven: Pool, proven_for: Duration) -> Arc<Self> {
        Arc::new(Self {
            open,
            proven,
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
            held: Held::default(),
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

fn add(slot: &mut Option<OwnedSemaphorePermit>, permit: Option<OwnedSemaphorePermit>) {
    match (slot.as_mut(), permit) {
        (Some(held), Some(permit)) => held.merge(permit),
        (None, permit) => *slot = permit,
        (Some(_), None) => {}
    }
}

/// What one request holds; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    peer: IpAddr,
    /// Whether the peer was proven when its request began.
    proven: bool,
    held: Held,
    open_permit: Option<OwnedSemaphorePermit>,
    proven_permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// Holds enough for `bytes` in all, or refuses and holds what it held.
    /// A proven peer takes what it can from the proven pool and the rest
    /// from the open one.
    pub fn grow_to(&mut self, bytes: usize) -> Result<(), Refused> {
        let wanted = bytes.div_ceil(1024);
        let more = wanted.saturating_sub(self.held.open + self.held.proven);
        if more == 0 {
            return Ok(());
        }
        let budget = &self.budget;
        // Every take happens under this lock: what a pool has available
        // can only grow until it is released.
        let mut held_by_peer = lock(&budget.held_by_peer);
        let by_peer = held_by_peer.get(&self.peer).copied().unwrap_or_default();
        let from_proven = if self.proven {
            more.min(budget.proven.share_kib.saturating_sub(by_peer.proven))
                .min(budget.proven.kib.available_permits())
        } else {
            0
        };
        let from_open = more - from_proven;
        if by_peer.open + from_open > budget.open.share_kib {
            return Err(Refused::PeerShare);
        }
        let open = budget.open.take(from_open)?;
        let proven = budget.proven.take(from_proven)?;
        // Counted only once held: a refused peer leaves nothing behind.
        held_by_peer.insert(
            self.peer,
            Held {
                open: by_peer.open + from_open,
                proven: by_peer.proven + from_proven,
            },
        );
        self.held.open += from_open;
        self.held.proven += from_proven;
        add(&mut self.open_permit, open);
        add(&mut self.proven_permit, proven);
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held == Held::default() {
            return;
        }
        let mut held_by_peer = lock(&self.budget.held_by_peer);
        if let Some(by_peer) = held_by_peer.get_mut(&self.peer) {
            by_peer.open = by_peer.open.saturating_sub(self.held.open);
            by_peer.proven = by_peer.proven.saturating_sub(self.held.proven);
            if *by_peer == Held::default() {
                held_by_peer.remove(&self.peer);
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

    fn available(budget: &BodyBudget) -> (usize, usize) {
        (
            budget.open.kib.available_permits(),
            budget.proven.kib.available_permits(),
        )
    }

    #[test]
    fn a_peer_holds_at_most_its_share_of_the_open_pool_and_others_keep_the_rest() {
        let budget = BodyBudget::with_pools(Pool::new(100, 50), Pool::new(0, 0), PROVEN_FOR);
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
        assert_eq!(available(&budget), (50, 0));
        drop(other);
        assert!(lock(&budget.held_by_peer).is_empty(), "nothing is left behind");
        assert_eq!(available(&budget), (100, 0));
    }

    #[test]
    fn one_body_always_fits_and_one_address_takes_a_quarter_of_the_open_pool() {
        let budget = BodyBudget::new(1500);
        assert_eq!(available(&budget), (1024, 476), "the open pool holds the largest body");
        assert_eq!(budget.open.share_kib, 1024, "and so does a share of it");
        let budget = BodyBudget::new(64 * 1024);
        assert_eq!(available(&budget), (32 * 1024, 32 * 1024));
        assert_eq!((budget.open.share_kib, budget.proven.share_kib), (8 * 1024, 16 * 1024));
        let mut first = budget.start(peer(1));
        first.grow_to(8 * 1024 * 1024).expect("a quarter");
        assert_eq!(first.grow_to(8 * 1024 * 1024 + 1), Err(Refused::PeerShare));
        assert_eq!(budget.start(peer(2)).grow_to(30 * 1024 * 1024), Err(Refused::PeerShare));
        assert_eq!(
            lock(&budget.held_by_peer).len(),
            1,
            "a refused peer leaves nothing behind"
        );
    }

    #[test]
    fn many_unproven_peers_fill_the_open_pool_and_never_the_proven_one() {
        let budget = BodyBudget::with_pools(Pool::new(100, 50), Pool::new(50, 40), PROVEN_FOR);
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
        delivery.grow_to(40 * 1024).expect("its share of the proven pool");
        assert_eq!(available(&budget), (0, 10));
        assert_eq!(
            delivery.grow_to(41 * 1024),
            Err(Refused::Overloaded),
            "past its proven share, the open pool is spent"
        );
        drop(attackers);
        delivery.grow_to(60 * 1024).expect("the rest from the open pool");
        assert_eq!(available(&budget), (80, 10));
        drop(delivery);
        assert_eq!(available(&budget), (100, 50), "both released");
        assert!(lock(&budget.held_by_peer).is_empty());
    }

    #[test]
    fn a_proven_peer_takes_what_is_left_of_the_proven_pool_then_the_open_one() {
        let budget = BodyBudget::with_pools(Pool::new(100, 100), Pool::new(10, 10), PROVEN_FOR);
        budget.prove(peer(1));
        let mut delivery = budget.start(peer(1));
        delivery.grow_to(25 * 1024).expect("split");
        assert_eq!(available(&budget), (85, 0));
        assert_eq!(delivery.held, Held { open: 15, proven: 10 });
    }

    #[test]
    fn a_proof_expires() {
        let budget = BodyBudget::with_pools(Pool::new(0, 10), Pool::new(10, 10), Duration::ZERO);
        budget.prove(peer(1));
        assert_eq!(budget.start(peer(1)).grow_to(1), Err(Refused::Overloaded));
        let budget = BodyBudget::with_pools(Pool::new(0, 0), Pool::new(10, 10), PROVEN_FOR);
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
        let budget = BodyBudget::with_pools(Pool::new(10, 10), Pool::new(0, 0), PROVEN_FOR);
        let mut reservation = budget.start(peer(1));
        reservation.grow_to(1).expect("one KiB");
        reservation.grow_to(1024).expect("still one");
        assert_eq!(budget.open.kib.available_permits(), 9);
        reservation.grow_to(1025).expect("two");
        assert_eq!(budget.open.kib.available_permits(), 8);
    }
}
