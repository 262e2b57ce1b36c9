//! A bound on the memory held by requests being read, across every connection of the
//! process (Kafka's `queued.max.request.bytes` and its `MemoryPool`).
//!
//! A connection reserves a whole frame (size prefix included) as soon as it has read the
//! frame's size prefix, before it reads the body, and keeps the reservation until it drops
//! the [`PoolReservation`] (the broker: once the request's answer is ready, so record bytes
//! kept for an append stay counted). When the pool cannot fit the frame the connection
//! stops reading until reservations are released — reads pause, memory does not grow.
//!
//! No deadlock: a connection waits only between frames, never holding a part of one, and
//! an empty pool admits any frame (`socket.request.max.bytes` ≤ the pool's size is checked
//! by the config), so some reserved request can always finish.
//!
//! Shared by every shard: one atomic counter and one wake-up event, touched once per
//! request, not per record.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use event_listener::Event;

/// The pool: `capacity_bytes` shared by every reservation.
#[derive(Debug)]
pub struct RequestMemoryPool {
    capacity_bytes: usize,
    used_bytes: AtomicUsize,
    released: Event,
}

impl RequestMemoryPool {
    pub fn new(capacity_bytes: usize) -> Arc<RequestMemoryPool> {
        Arc::new(RequestMemoryPool {
            capacity_bytes,
            used_bytes: AtomicUsize::new(0),
            released: Event::new(),
        })
    }

    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// Bytes reserved right now.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::Acquire)
    }

    /// Reserves `bytes` if they fit (or the pool is empty: a frame larger than the pool is
    /// refused earlier, by `socket.request.max.bytes`).
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<PoolReservation> {
        let mut used = self.used_bytes.load(Ordering::Acquire);
        loop {
            let fits = used == 0 || used.checked_add(bytes)? <= self.capacity_bytes;
            if !fits {
                return None;
            }
            match self.used_bytes.compare_exchange_weak(
                used,
                used + bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(PoolReservation {
                        pool: self.clone(),
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }

    /// Reserves `bytes`, waiting while the pool is too full. `on_wait` runs once if it
    /// has to wait (the caller logs that reading paused).
    pub async fn reserve(
        self: &Arc<Self>,
        bytes: usize,
        on_wait: impl FnOnce(),
    ) -> PoolReservation {
        let mut on_wait = Some(on_wait);
        loop {
            if let Some(r) = self.try_reserve(bytes) {
                return r;
            }
            let listener = self.released.listen();
            if let Some(r) = self.try_reserve(bytes) {
                return r;
            }
            if let Some(f) = on_wait.take() {
                f();
            }
            listener.await;
        }
    }
}

/// Bytes held in a [`RequestMemoryPool`] until dropped.
#[derive(Debug)]
pub struct PoolReservation {
    pool: Arc<RequestMemoryPool>,
    bytes: usize,
}

impl PoolReservation {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for PoolReservation {
    fn drop(&mut self) {
        self.pool.used_bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        self.pool.released.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_capacity_and_an_empty_pool_admits_anything() {
        let pool = RequestMemoryPool::new(100);
        let a = pool.try_reserve(60).expect("fits");
        assert!(pool.try_reserve(50).is_none(), "60 + 50 > 100");
        let b = pool.try_reserve(40).expect("60 + 40 fits");
        assert_eq!(pool.used_bytes(), 100);
        drop((a, b));
        assert_eq!(pool.used_bytes(), 0);
        let big = pool
            .try_reserve(500)
            .expect("an empty pool admits one frame");
        assert!(pool.try_reserve(1).is_none());
        drop(big);
    }

    #[test]
    fn a_waiting_reservation_proceeds_when_memory_is_released() {
        let pool = RequestMemoryPool::new(100);
        let held = pool.try_reserve(80).unwrap();
        let mut waited = false;
        let rt = compio::runtime::Runtime::new().unwrap();
        let got = rt.block_on(async {
            // Runs once the waiter below yields.
            let release = compio::runtime::spawn(async move { drop(held) });
            let got = pool.reserve(50, || waited = true).await;
            release.await.expect("the release task");
            got
        });
        assert!(waited, "it had to wait");
        assert_eq!(got.bytes(), 50);
        assert_eq!(pool.used_bytes(), 50);
    }
}
