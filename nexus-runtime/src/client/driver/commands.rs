//! The way from an operation's handles to its driver: cancel requests, and the news that every
//! handle is gone (the operation is abandoned).
//!
//! A queue behind a lock with one `Notify`, rather than a tokio mpsc channel: the channel's
//! cache-padded state and first block of 32 slots took about 800 bytes per operation, for a queue
//! that rarely holds anything. All the handles of an operation share one sender, so its drop
//! means the last handle is gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::Command;

#[derive(Default)]
struct Queue {
    commands: Mutex<Vec<Command>>,
    notify: Notify,
    sender_gone: AtomicBool,
    receiver_gone: AtomicBool,
}

/// The handles' end.
pub(crate) struct CommandSender {
    queue: Arc<Queue>,
}

/// The driver's end.
pub(crate) struct CommandReceiver {
    queue: Arc<Queue>,
}

/// A new queue.
pub(crate) fn channel() -> (CommandSender, CommandReceiver) {
    let queue = Arc::new(Queue::default());
    (
        CommandSender {
            queue: queue.clone(),
        },
        CommandReceiver { queue },
    )
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Command>> {
        self.commands.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CommandSender {
    /// Queues a command for the driver; gives it back if the driver has ended.
    pub fn send(&self, command: Command) -> Result<(), Command> {
        let mut commands = self.queue.lock();
        if self.queue.receiver_gone.load(Ordering::Acquire) {
            return Err(command);
        }
        commands.push(command);
        drop(commands);
        self.queue.notify.notify_one();
        Ok(())
    }
}

impl Drop for CommandSender {
    fn drop(&mut self) {
        self.queue.sender_gone.store(true, Ordering::Release);
        self.queue.notify.notify_one();
    }
}

impl CommandReceiver {
    /// The next command; `None` once every handle is gone and no command is left.
    pub async fn recv(&mut self) -> Option<Command> {
        loop {
            {
                let mut commands = self.queue.lock();
                if !commands.is_empty() {
                    return Some(commands.remove(0));
                }
                if self.queue.sender_gone.load(Ordering::Acquire) {
                    return None;
                }
            }
            // `notify_one` leaves a permit when nobody waits, so a command queued between the
            // check above and this wait is not missed.
            self.queue.notify.notified().await;
        }
    }
}

impl Drop for CommandReceiver {
    fn drop(&mut self) {
        // Under the lock, so that a send either lands before (and is dropped with the queue,
        // its reply channel telling the handle the driver ended) or sees the flag.
        let commands = std::mem::take(&mut *self.queue.lock());
        self.queue.receiver_gone.store(true, Ordering::Release);
        drop(commands);
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn commands_arrive_in_order_then_the_end_of_the_handles() {
        let (tx, mut rx) = channel();
        let (a, _a) = oneshot::channel();
        let (b, _b) = oneshot::channel();
        assert!(tx.send(Command::Cancel(a)).is_ok());
        assert!(tx.send(Command::Cancel(b)).is_ok());
        assert!(rx.recv().await.is_some());
        let waiting = tokio::spawn(async move {
            let second = rx.recv().await.is_some();
            let end = rx.recv().await.is_none();
            (second, end)
        });
        tokio::task::yield_now().await;
        drop(tx);
        assert_eq!(waiting.await.expect("joined"), (true, true));
    }

    #[tokio::test]
    async fn a_waiting_driver_is_woken_and_a_gone_driver_refuses() {
        let (tx, mut rx) = channel();
        let waiting = tokio::spawn(async move { rx.recv().await.is_some() });
        tokio::task::yield_now().await;
        let (reply, _keep) = oneshot::channel();
        assert!(tx.send(Command::Cancel(reply)).is_ok());
        assert!(waiting.await.expect("joined"));
        let (reply, _keep) = oneshot::channel();
        assert!(
            tx.send(Command::Cancel(reply)).is_err(),
            "the receiver is gone"
        );
    }
}
