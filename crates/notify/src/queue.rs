//! [`Queue`]: the bounded queue between [`Notifier::send`](crate::Notifier::send) and one webhook's
//! delivery task. Pushing never waits: when the queue is full the oldest entry is handed back to be
//! reported as dropped. The entry being delivered still counts as pending, so a flush waits for it.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{watch, Notify};

struct State<T> {
    items: VecDeque<T>,
    /// An entry was handed out by [`Queue::next`] and is not [`Queue::done`] yet.
    busy: bool,
    closed: bool,
}

/// A drop-oldest queue with one consumer.
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    /// Wakes the consumer; `notify_one` keeps a permit, so a push between its check and its wait
    /// is not missed.
    wake: Notify,
    /// Entries queued plus the one in delivery.
    pending: watch::Sender<usize>,
    closed: watch::Sender<bool>,
}

impl<T> Queue<T> {
    /// An empty queue holding at most `capacity` entries (at least 1).
    pub(crate) fn new(capacity: usize) -> Queue<T> {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                busy: false,
                closed: false,
            }),
            capacity: capacity.max(1),
            wake: Notify::new(),
            pending: watch::Sender::new(0),
            closed: watch::Sender::new(false),
        }
    }

    /// Adds `item` at the back; when the queue was full, returns the oldest entry it displaced.
    pub(crate) fn push(&self, item: T) -> Option<T> {
        let displaced = {
            let mut state = self.lock();
            let displaced = if state.items.len() >= self.capacity {
                state.items.pop_front()
            } else {
                None
            };
            state.items.push_back(item);
            self.publish(&state);
            displaced
        };
        self.wake.notify_one();
        displaced
    }

    /// Waits for the front entry and marks it in delivery; `None` once the queue is closed (what
    /// is left is then taken with [`Queue::drain`]).
    pub(crate) async fn next(&self) -> Option<T> {
        loop {
            {
                let mut state = self.lock();
                if state.closed {
                    return None;
                }
                if let Some(item) = state.items.pop_front() {
                    state.busy = true;
                    self.publish(&state);
                    return Some(item);
                }
            }
            self.wake.notified().await;
        }
    }

    /// The entry from [`Queue::next`] is finished with.
    pub(crate) fn done(&self) {
        let mut state = self.lock();
        state.busy = false;
        self.publish(&state);
    }

    /// Stops the consumer: [`Queue::next`] returns `None` and [`Queue::closed`] resolves.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.closed.send_replace(true);
        self.wake.notify_one();
    }

    /// Resolves once the queue is closed.
    pub(crate) async fn closed(&self) {
        let mut closed = self.closed.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = closed.wait_for(|c| *c).await;
    }

    /// Takes every queued entry.
    pub(crate) fn drain(&self) -> Vec<T> {
        let mut state = self.lock();
        let items = state.items.drain(..).collect();
        self.publish(&state);
        items
    }

    /// Resolves once nothing is queued or in delivery.
    pub(crate) async fn idle(&self) {
        let mut pending = self.pending.subscribe();
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    fn publish(&self, state: &State<T>) {
        self.pending
            .send_replace(state.items.len() + usize::from(state.busy));
    }

    /// The state; a panic elsewhere while it was held leaves it consistent (every change is one step).
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_hands_back_its_oldest_entry() {
        let q = Queue::new(2);
        assert_eq!(q.push(1), None);
        assert_eq!(q.push(2), None);
        assert_eq!(q.push(3), Some(1));
        assert_eq!(*q.pending.borrow(), 2);
        assert_eq!(q.next().await, Some(2));
        assert_eq!(*q.pending.borrow(), 2, "the entry in delivery still counts");
        q.done();
        assert_eq!(*q.pending.borrow(), 1);
        q.close();
        assert_eq!(q.next().await, None);
        assert_eq!(q.drain(), vec![3]);
        q.idle().await;
        q.closed().await;
    }

    #[tokio::test]
    async fn next_wakes_for_a_push_made_while_it_waits() {
        let q = std::sync::Arc::new(Queue::new(4));
        let consumer = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        q.push(7);
        assert_eq!(consumer.await.expect("join"), Some(7));
    }
}
