//! The record cell's concurrent paths under every interleaving: a change racing a receiver about
//! to wait, the last sender leaving while a receiver waits, a change followed by the end, and two
//! receivers waiting on one change.

use loom::future::block_on;
use loom::thread;

use crate::record_cell::{Closed, channel};

#[test]
fn a_change_racing_a_wait_is_never_missed() {
    loom::model(|| {
        let (tx, mut rx) = channel(0u32);
        let writer = thread::spawn(move || {
            tx.send_modify(|v| *v = 1);
            // Kept until the receiver has its answer: the change alone must wake it.
            tx
        });
        let got = block_on(async { rx.wait_for(|v| *v == 1).await.map(|v| *v) });
        assert_eq!(got, Ok(1));
        drop(writer.join().expect("writer"));
    });
}

#[test]
fn the_last_sender_leaving_wakes_a_waiting_receiver() {
    loom::model(|| {
        let (tx, mut rx) = channel(0u32);
        let second = tx.clone();
        let a = thread::spawn(move || drop(tx));
        let b = thread::spawn(move || drop(second));
        assert_eq!(block_on(rx.changed()), Err(Closed));
        a.join().expect("a");
        b.join().expect("b");
    });
}

#[test]
fn a_change_then_the_end_shows_the_change() {
    loom::model(|| {
        let (tx, mut rx) = channel(0u32);
        let writer = thread::spawn(move || {
            tx.send_replace(1);
        });
        // The change comes before the close: whatever the interleaving, it is seen.
        let got = block_on(async { rx.wait_for(|v| *v == 1).await.map(|v| *v) });
        assert_eq!(got, Ok(1));
        writer.join().expect("writer");
        assert_eq!(block_on(rx.changed()), Err(Closed));
    });
}

#[test]
fn one_change_wakes_every_waiting_receiver() {
    loom::model(|| {
        let (tx, mut rx) = channel(0u32);
        let mut other = tx.subscribe();
        let waiter = thread::spawn(move || block_on(other.changed()));
        let writer = thread::spawn(move || {
            tx.send_modify(|v| *v += 1);
            tx
        });
        assert_eq!(block_on(rx.changed()), Ok(()));
        assert_eq!(waiter.join().expect("waiter"), Ok(()));
        assert_eq!(*rx.borrow(), 1);
        drop(writer.join().expect("writer"));
    });
}
