//! The inputs of `payments` load mode, deterministic in the run id and the index, so that anyone
//! (a crash test) can tell what each check of a run must answer.

use fraud_contract::CheckTransactionInput;

/// The request id of the `i`-th check of run `run_id`: `{run_id}-{i}`.
pub fn request_id(run_id: &str, i: u64) -> String {
    format!("{run_id}-{i}")
}

/// The `i`-th check of a run: its transaction id is its request id; amounts cycle through
/// approved and declined ones (`(i % 20) * 750 + 10`, so 14 of every 20 are approved).
pub fn check_input(run_id: &str, i: u64) -> CheckTransactionInput {
    CheckTransactionInput {
        transaction_id: request_id(run_id, i),
        amount: (i % 20) as f64 * 750.0 + 10.0,
        user_id: format!("user-{}", i % 7),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fraud_desk::verdict;

    #[test]
    fn fourteen_of_every_twenty_checks_are_approved() {
        let approved = (0..1000)
            .filter(|&i| verdict(&check_input("r", i)).unwrap().approved)
            .count();
        assert_eq!(approved, 700);
        assert_eq!(check_input("run-1", 42).transaction_id, "run-1-42");
        assert_eq!(request_id("run-1", 42), "run-1-42");
    }
}
