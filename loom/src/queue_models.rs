//! The queue's concurrent paths under every interleaving: senders racing each other and the
//! receiver, a send waking a waiting receiver, the last sender leaving while the receiver waits,
//! a weak sender upgrading while the last sender leaves, a post racing the last sender's exit, and
//! the receiver leaving while a send is under way.

use loom::future::block_on;
use loom::thread;

use crate::queue::{Receiver, channel};
use crate::sync::{Arc, AtomicUsize, Ordering};

/// Everything until the end of the senders.
fn drain(mut rx: Receiver<u32>) -> Vec<u32> {
    block_on(async move {
        let mut got = Vec::new();
        while let Some(item) = rx.recv().await {
            got.push(item);
        }
        got
    })
}

#[test]
fn concurrent_senders_deliver_everything_then_the_end() {
    loom::model(|| {
        let (tx, rx) = channel();
        let second = tx.clone();
        let a = thread::spawn(move || {
            assert!(tx.send(1).is_ok());
        });
        let b = thread::spawn(move || {
            assert!(second.send(2).is_ok());
        });
        let mut got = drain(rx);
        a.join().expect("sender a");
        b.join().expect("sender b");
        got.sort_unstable();
        assert_eq!(got, vec![1, 2]);
    });
}

#[test]
fn a_send_wakes_a_waiting_receiver() {
    loom::model(|| {
        let (tx, mut rx) = channel();
        let sender = thread::spawn(move || {
            assert!(tx.send(1).is_ok());
            // Kept until the receiver has the item: the send alone must wake it.
            tx
        });
        assert_eq!(block_on(rx.recv()), Some(1));
        drop(sender.join().expect("sender"));
    });
}

#[test]
fn the_last_sender_leaving_wakes_a_waiting_receiver() {
    loom::model(|| {
        let (tx, rx) = channel::<u32>();
        let leaver = thread::spawn(move || drop(tx));
        assert_eq!(drain(rx), Vec::<u32>::new());
        leaver.join().expect("leaver");
    });
}

#[test]
fn a_weak_sender_upgrades_only_while_a_sender_lives() {
    loom::model(|| {
        let (tx, rx) = channel();
        let weak = tx.downgrade();
        let upgrader = thread::spawn(move || match weak.upgrade() {
            // Upgraded before the last sender left: its item must arrive.
            Some(sender) => sender.send(7).is_ok(),
            None => false,
        });
        drop(tx);
        let got = drain(rx);
        let sent = upgrader.join().expect("upgrader");
        assert_eq!(got, if sent { vec![7] } else { vec![] });
    });
}

#[test]
fn a_post_racing_the_last_senders_exit_arrives_and_the_end_is_told_once() {
    loom::model(|| {
        let (tx, mut rx) = channel();
        let weak = tx.downgrade();
        let leaver = thread::spawn(move || drop(tx));
        // The receiver lives until the item arrived: the post cannot be refused.
        let poster = thread::spawn(move || weak.post(7).is_ok());
        let (got, ends) = block_on(async move {
            let (mut got, mut ends) = (Vec::new(), 0);
            while got.is_empty() {
                match rx.recv().await {
                    Some(item) => got.push(item),
                    None => ends += 1,
                }
            }
            (got, ends)
        });
        assert!(poster.join().expect("poster"));
        leaver.join().expect("leaver");
        assert_eq!(got, vec![7]);
        assert!(ends <= 1, "the end of the senders told {ends} times");
    });
}

/// An item that counts its drops: what a cancel request's reply channel is to its handle.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_send_racing_the_receivers_exit_is_refused_or_dropped_never_kept() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel();
        let item = Tracked(drops.clone());
        let sender = thread::spawn(move || {
            let refused = tx.send(item).err();
            // The sender is still alive here: whatever was sent must already be gone, or a
            // handle waiting on the item's reply would wait for as long as it holds a sender.
            (tx, refused)
        });
        drop(rx);
        let (tx, refused) = sender.join().expect("sender");
        match refused {
            Some(item) => {
                assert_eq!(drops.load(Ordering::SeqCst), 0, "refused and handed back");
                drop(item);
            }
            None => assert_eq!(
                drops.load(Ordering::SeqCst),
                1,
                "accepted, so dropped with the receiver"
            ),
        }
        drop(tx);
    });
}
