//! How old the data a computation read can be. A value built from a
//! ranking or an SQL answer that was itself being served for its age is as
//! old as that ranking or answer, not as old as the value: without
//! counting that, a body served for the ranking max age and built from a
//! ranking served for the ranking max age could show a batch twice that
//! late. Whatever serves something kept for its age notes when that was
//! read ([`note`]); a computation measured with [`oldest_read`] learns the
//! oldest of those instants, and counts its own age from it.

use std::cell::Cell;
use std::time::Instant;

tokio::task_local! {
    static OLDEST: Cell<Instant>;
}

/// Runs `computation` and returns what it returns with the instant of the
/// oldest data it read: `start`, or earlier if it served something kept
/// from before. A computation measured inside another passes its oldest
/// instant on to it.
pub async fn oldest_read<F: Future>(start: Instant, computation: F) -> (F::Output, Instant) {
    let (output, oldest) = OLDEST
        .scope(Cell::new(start), async move {
            let output = computation.await;
            (output, OLDEST.with(Cell::get))
        })
        .await;
    note(oldest);
    (output, oldest)
}

/// Notes that the computation under way serves data read at `instant`
/// (nothing outside [`oldest_read`]).
pub fn note(instant: Instant) {
    let _ = OLDEST.try_with(|oldest| {
        if instant < oldest.get() {
            oldest.set(instant);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_oldest_noted_instant_is_the_computations_and_its_callers() {
        let now = Instant::now();
        let earlier = now - Duration::from_millis(100);
        let (value, oldest) = oldest_read(now, async { 7 }).await;
        assert_eq!((value, oldest), (7, now), "nothing older read");
        let (_, outer) = oldest_read(now, async {
            let (_, inner) = oldest_read(now, async { note(earlier) }).await;
            assert_eq!(inner, earlier);
            note(now + Duration::from_millis(5));
        })
        .await;
        assert_eq!(outer, earlier, "an inner computation's oldest read is its caller's too");
        note(earlier); // outside any computation: nothing to note, no panic
    }
}
