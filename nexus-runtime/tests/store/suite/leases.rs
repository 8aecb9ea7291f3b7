//! Leases: how replicas share unfinished operations.

use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::store::{Lease, OperationState, Store};

use super::Harness;
use super::fixtures::*;

const LEASE: Duration = Duration::from_secs(30);

/// Claims take free or expired leases only, oldest first; a dead owner's operations go to
/// another after expiry; renewal tells an owner what it still holds; its stale writes fail.
pub async fn claim_expiry_takeover_renew_release<H: Harness>(h: &H) {
    let store = h.store();
    insert_all(&*store, 1..=3).await;
    let mut held = record(4, at(4));
    held.lease = Some(Lease::new("a", at(15)));
    store.insert(&held).await.unwrap();
    let mut finished = record(5, at(0));
    store.insert(&finished).await.unwrap();
    finished.state = OperationState::Failed;
    finished.closed_at = Some(at(1));
    assert!(store.update(&mut finished).await.unwrap());

    let claimed_by_a = store.claim("a", at(10), LEASE, 2).await.unwrap();
    let ids: Vec<_> = claimed_by_a.iter().map(|r| r.id).collect();
    assert_eq!(ids, [op_id(1), op_id(2)], "the oldest free ones");
    for r in &claimed_by_a {
        assert_eq!(r.lease, Some(Lease::new("a", at(40))));
        assert_eq!(r.version, 1, "a claim bumps the version");
        assert_eq!(store.get(r.id).await.unwrap().as_ref(), Some(r));
    }
    let claimed_by_b = store.claim("b", at(10), LEASE, 10).await.unwrap();
    let ids: Vec<_> = claimed_by_b.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        [op_id(3)],
        "live leases and finished operations are not claimable"
    );
    assert!(
        store
            .claim("b", at(10), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        store.renew("a", at(20), LEASE).await.unwrap(),
        [op_id(1), op_id(2), op_id(4)]
    );
    assert_eq!(
        store.get(op_id(4)).await.unwrap().unwrap().lease,
        Some(Lease::new("a", at(50))),
        "renewal extends every lease its owner holds, one whose own end has passed too"
    );
    let early: Vec<_> = store
        .claim("c", at(49), LEASE, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        early,
        [op_id(3)],
        "only b's lease (until 40) has expired at 49"
    );

    // a died at 20; at 60 its leases (until 50) are expired and c takes them over.
    let taken: Vec<_> = store
        .claim("c", at(60), LEASE, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        taken,
        [op_id(1), op_id(2), op_id(4)],
        "c's own live lease is not re-claimed"
    );
    assert!(
        store.renew("a", at(61), LEASE).await.unwrap().is_empty(),
        "a lost them"
    );
    let mut stale = claimed_by_a[0].clone();
    stale.state = OperationState::BackingOff;
    assert!(
        !store.update(&mut stale).await.unwrap(),
        "a's stale write is fenced off"
    );
    let mut current = store.get(op_id(1)).await.unwrap().unwrap();
    current.state = OperationState::BackingOff;
    assert!(store.update(&mut current).await.unwrap());
    assert_eq!(
        current.lease,
        Some(Lease::new("c", at(90))),
        "update keeps the lease"
    );

    assert_eq!(store.release("a", &[op_id(1), op_id(2)]).await.unwrap(), 0);
    assert_eq!(store.release("c", &[op_id(2), op_id(99)]).await.unwrap(), 1);
    assert_eq!(store.get(op_id(2)).await.unwrap().unwrap().lease, None);
    let free: Vec<_> = store
        .claim("d", at(61), LEASE, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(free, [op_id(2)], "a released operation is free at once");
    assert_eq!(store.release_all("c").await.unwrap(), 3);
    assert!(store.renew("c", at(62), LEASE).await.unwrap().is_empty());
    assert_eq!(store.renew("d", at(62), LEASE).await.unwrap(), [op_id(2)]);
    assert_eq!(store.get(op_id(5)).await.unwrap().unwrap().lease, None);
}

/// Owners claiming at once from two handles (two pools for SQL stores) never get the same
/// operation, and together get them all.
pub async fn concurrent_claims_never_share_an_operation<H: Harness>(h: &H) {
    let handles: [Arc<dyn Store>; 2] = [h.store(), h.another_handle().await];
    insert_all(&*handles[0], 1..=40).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = handles[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("owner-{i}");
            let mut mine = Vec::new();
            // Bounded: a store that hands out claimed work again must fail, not hang.
            for _ in 0..100 {
                let batch = store.claim(&owner, at(100), LEASE, 3).await.unwrap();
                if batch.is_empty() {
                    return (owner, mine);
                }
                mine.extend(batch.into_iter().map(|r| r.id));
                tokio::task::yield_now().await;
            }
            panic!("claims never ran out: the store hands out claimed work again");
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let (owner, mine) = task.await.unwrap();
        for id in &mine {
            let lease = handles[0].get(*id).await.unwrap().unwrap().lease;
            assert_eq!(lease.map(|l| l.owner), Some(owner.clone()));
        }
        all.extend(mine);
    }
    assert_eq!(all.len(), 40, "every operation claimed once: {all:?}");
    assert!(all_distinct(&all), "an operation went to two owners");
}

/// The caller's leases renew as the handler's do (see the test below): a renewal keeps every
/// lease its owner holds live until the renewal's end, never shortens one, and does not take back
/// what another owner took.
pub async fn renewal_keeps_every_lease_of_its_owner<H: Harness>(h: &H) {
    let store = h.store();
    for (n, owner, until) in [(1, "a", 30), (2, "a", 60), (3, "b", 30)] {
        let mut r = record(n, at(n as u64));
        r.lease = Some(Lease::new(owner, at(until)));
        store.insert(&r).await.unwrap();
    }
    assert_eq!(
        store.renew("a", at(40), LEASE).await.unwrap(),
        [op_id(1), op_id(2)]
    );
    for n in [1, 2] {
        assert_eq!(
            store.get(op_id(n)).await.unwrap().unwrap().lease,
            Some(Lease::new("a", at(70))),
            "operation {n}"
        );
    }
    let mut later = record(4, at(45));
    later.lease = Some(Lease::new("a", at(200)));
    store.insert(&later).await.unwrap();
    let ids = |records: Vec<nexus_runtime::store::CallerRecord>| {
        records.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.claim("c", at(69), LEASE, 10).await.unwrap()),
        [op_id(3)]
    );
    assert_eq!(
        ids(store.claim("c", at(70), LEASE, 10).await.unwrap()),
        [op_id(1), op_id(2)]
    );
    assert_eq!(store.renew("a", at(71), LEASE).await.unwrap(), [op_id(4)]);
    assert_eq!(
        store.get(op_id(4)).await.unwrap().unwrap().lease,
        Some(Lease::new("a", at(200))),
        "never shortened"
    );
    assert_eq!(
        store.get(op_id(1)).await.unwrap().unwrap().lease,
        Some(Lease::new("c", at(100)))
    );
    assert!(
        !ids(store.claim("d", at(150), LEASE, 10).await.unwrap()).contains(&op_id(4)),
        "operation 4's own lease runs to 200"
    );
}

/// A renewal keeps every lease its owner holds on a running operation live until the renewal's
/// end, its own expiry past or not (a store may keep one heartbeat per owner rather than write
/// each lease): nobody takes them before, anybody after. A lease that ends later than the
/// renewal keeps its end, and one another owner took stays taken.
pub async fn async_renewal_keeps_every_lease_of_its_owner<H: Harness>(h: &H) {
    let store = h.store();
    for (token, owner, until) in [("t1", "a", 30), ("t2", "a", 60), ("t3", "b", 30)] {
        let mut op = async_record(token, at(1), None);
        op.lease = Some(Lease::new(owner, at(until)));
        start_async(&*store, &op).await;
    }
    assert_eq!(store.renew_async("a", at(40), LEASE).await.unwrap(), 2);
    for token in ["t1", "t2"] {
        assert_eq!(
            store.get_async(token).await.unwrap().unwrap().lease,
            Some(Lease::new("a", at(70))),
            "{token}"
        );
    }
    let mut t4 = async_record("t4", at(45), None);
    t4.lease = Some(Lease::new("a", at(200)));
    start_async(&*store, &t4).await;
    assert_eq!(
        store.get_async("t4").await.unwrap().unwrap().lease,
        Some(Lease::new("a", at(200))),
        "a lease ending after the renewal keeps its end"
    );
    let tokens = |ops: Vec<nexus_runtime::store::AsyncOperationRecord>| {
        ops.into_iter().map(|op| op.token).collect::<Vec<_>>()
    };
    assert_eq!(
        tokens(store.claim_async("c", at(69), LEASE, 10).await.unwrap()),
        ["t3"],
        "only b's lease, never renewed, is free"
    );
    assert_eq!(
        tokens(store.claim_async("c", at(70), LEASE, 10).await.unwrap()),
        ["t1", "t2"],
        "free once the renewal ends"
    );
    assert_eq!(
        store.renew_async("a", at(71), LEASE).await.unwrap(),
        1,
        "a holds t4 only"
    );
    assert_eq!(store.leased_async("a").await.unwrap(), ["t4"]);
    assert_eq!(
        store.get_async("t1").await.unwrap().unwrap().lease,
        Some(Lease::new("c", at(100))),
        "a's renewal does not take back what c took"
    );
    assert!(
        store
            .claim_async("d", at(150), LEASE, 10)
            .await
            .unwrap()
            .iter()
            .all(|op| op.token != "t4"),
        "t4's own lease runs to 200"
    );
}

/// The same lease rules for the handler's async operations.
pub async fn async_leases<H: Harness>(h: &H) {
    let store = h.store();
    let mut t1 = async_record("t1", at(1), None);
    t1.lease = Some(Lease::new("a", at(30)));
    let mut t2 = async_record("t2", at(2), Some(callback(2)));
    t2.lease = None;
    let t3 = async_record("t3", at(0), None);
    for op in [&t1, &t2, &t3] {
        start_async(&*store, op).await;
    }
    store
        .complete_async(&completion_ok("t3"), at(5))
        .await
        .unwrap();
    let unfinished: Vec<_> = store
        .list_unfinished_async()
        .await
        .unwrap()
        .into_iter()
        .map(|op| op.token)
        .collect();
    assert_eq!(unfinished, ["t1", "t2"]);
    assert_eq!(store.leased_async("a").await.unwrap(), ["t1"]);

    let claimed = store.claim_async("b", at(10), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].token, "t2");
    assert_eq!(claimed[0].lease, Some(Lease::new("b", at(40))));
    assert_eq!(
        store.get_async("t2").await.unwrap().as_ref(),
        Some(&claimed[0])
    );

    let taken: Vec<_> = store
        .claim_async("b", at(100), LEASE, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|op| op.token)
        .collect();
    assert_eq!(taken, ["t1", "t2"], "expired leases, a's and b's own");
    assert_eq!(store.renew_async("a", at(100), LEASE).await.unwrap(), 0);
    assert!(store.leased_async("a").await.unwrap().is_empty());
    assert_eq!(store.renew_async("b", at(101), LEASE).await.unwrap(), 2);
    assert_eq!(store.leased_async("b").await.unwrap(), ["t1", "t2"]);
    assert_eq!(
        store.get_async("t1").await.unwrap().unwrap().lease,
        Some(Lease::new("b", at(131)))
    );
    // The cancel requests among an owner's running operations, in one query.
    assert!(store.cancel_requested_async("b").await.unwrap().is_empty());
    store.request_cancel_async("t2", at(102)).await.unwrap();
    store.request_cancel_async("t3", at(102)).await.unwrap();
    assert_eq!(store.cancel_requested_async("b").await.unwrap(), ["t2"]);
    assert!(store.cancel_requested_async("a").await.unwrap().is_empty());
    assert_eq!(store.release_async("a", &["t1".into()]).await.unwrap(), 0);
    assert_eq!(
        store
            .release_async("b", &["t1".into(), "t3".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get_async("t1").await.unwrap().unwrap().lease, None);
    assert_eq!(store.get_async("t3").await.unwrap().unwrap().lease, None);
}

pub async fn concurrent_async_claims_never_share<H: Harness>(h: &H) {
    let handles: [Arc<dyn Store>; 2] = [h.store(), h.another_handle().await];
    for n in 0..20 {
        let mut op = async_record(&format!("tok-{n:02}"), at(n), None);
        op.lease = None;
        start_async(&*handles[n as usize % 2], &op).await;
    }
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = handles[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("owner-{i}");
            let mut mine = Vec::new();
            // Bounded: a store that hands out claimed work again must fail, not hang.
            for _ in 0..100 {
                let batch = store.claim_async(&owner, at(100), LEASE, 2).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|op| op.token));
                tokio::task::yield_now().await;
            }
            panic!("claims never ran out: the store hands out claimed work again");
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    assert_eq!(all.len(), 20, "{all:?}");
    assert!(all_distinct(&all));
}
