//! The checks of a run. Every operation completed once, with the right result; every request id
//! has exactly one *answered* start execution (its token is the one the caller holds and the
//! handler recorded), and it is the last start of that request id; every other start execution
//! was interrupted by a kill (its claim was open when the handler died) or is one the handler
//! warned about (an answer it could not record); every resumption is of an operation that was
//! running when the previous handler died, and every such operation was resumed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fraud_contract::CheckTransactionOutput;
use nexus_examples::executions::Execution;
use nexus_examples::fraud_desk::verdict;
use nexus_examples::load::{check_input, request_id};
use nexus_runtime::codec;
use nexus_runtime::store::{CallerRecord, OperationState};

use crate::run::Trace;
use crate::stores::HandlerRecords;

/// What the checks read.
pub struct Inputs<'a> {
    pub run_id: &'a str,
    pub count: u64,
    pub trace: &'a Trace,
    /// The executions log, with the offset of each line.
    pub executions: &'a [(u64, Execution)],
    pub handler: &'a HandlerRecords,
    /// The caller's record of each check, by index.
    pub caller: &'a [Option<CallerRecord>],
    /// How many operations the caller recorded in all.
    pub caller_total: usize,
}

/// What the checks found.
#[derive(Debug, Default)]
pub struct Findings {
    pub violations: Vec<String>,
    pub completed: u64,
    pub approved: u64,
    pub committed: usize,
    /// Start executions whose answer was not recorded: killed in flight, or warned about.
    pub interrupted_by_kills: usize,
    pub interrupted_warned: usize,
    pub resumed: usize,
    /// Completions sent again after a kill whose first delivery the caller had recorded, still
    /// pending (their receiver has exited).
    pub redeliveries_pending: usize,
}

impl Findings {
    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    pub fn interrupted(&self) -> usize {
        self.interrupted_by_kills + self.interrupted_warned
    }
}

/// Runs every check.
pub fn check(inputs: &Inputs<'_>) -> Findings {
    let mut findings = Findings::default();
    let ids: Vec<String> = (0..inputs.count)
        .map(|i| request_id(inputs.run_id, i))
        .collect();
    check_summary(inputs, &mut findings);
    let tokens = check_caller(inputs, &ids, &mut findings);
    check_handler_records(inputs, &ids, &tokens, &mut findings);
    check_executions(inputs, &tokens, &mut findings);
    check_kills(inputs, &mut findings);
    findings
}

/// The summary payments printed: every check succeeded, with the approvals the inputs imply.
fn check_summary(inputs: &Inputs<'_>, findings: &mut Findings) {
    let expected_approved = (0..inputs.count)
        .filter(|&i| verdict(&check_input(inputs.run_id, i)).is_ok_and(|v| v.approved))
        .count() as u64;
    let summary: serde_json::Value = match serde_json::from_str(&inputs.trace.summary) {
        Ok(summary) => summary,
        Err(e) => {
            findings.violation(format!(
                "payments printed no JSON summary ({e}): {:?}",
                inputs.trace.summary
            ));
            return;
        }
    };
    let field = |name: &str| summary[name].as_u64();
    findings.completed = field("succeeded").unwrap_or(0);
    findings.approved = field("approved").unwrap_or(0);
    let expected = [
        ("count", inputs.count),
        ("succeeded", inputs.count),
        ("failed", 0),
        ("canceled", 0),
        ("timed_out", 0),
        ("not_started", 0),
        ("approved", expected_approved),
    ];
    for (name, value) in expected {
        if field(name) != Some(value) {
            findings.violation(format!(
                "summary: {name} is {}, expected {value}: {summary}",
                summary[name]
            ));
        }
    }
    if summary["run_id"] != inputs.run_id {
        findings.violation(format!("summary of another run: {summary}"));
    }
}

/// The caller's records: one per check, succeeded, with the right result. Returns the token of
/// each request id.
fn check_caller(
    inputs: &Inputs<'_>,
    ids: &[String],
    findings: &mut Findings,
) -> BTreeMap<String, String> {
    let mut tokens = BTreeMap::new();
    if inputs.caller_total != ids.len() {
        findings.violation(format!(
            "the caller recorded {} operations for {} checks",
            inputs.caller_total,
            ids.len()
        ));
    }
    for (i, (id, record)) in ids.iter().zip(inputs.caller).enumerate() {
        let Some(record) = record else {
            findings.violation(format!("{id}: not recorded by the caller (lost)"));
            continue;
        };
        if record.state != OperationState::Succeeded {
            findings.violation(format!(
                "{id}: {} at the caller ({:?})",
                record.state, record.error
            ));
        }
        match &record.token {
            Some(token) => {
                tokens.insert(id.clone(), token.clone());
            }
            None => findings.violation(format!("{id}: the caller holds no token")),
        }
        let expected = verdict(&check_input(inputs.run_id, i as u64)).ok();
        let got: Option<CheckTransactionOutput> =
            record.result.as_ref().and_then(|r| codec::decode(r).ok());
        if got.is_none() || got != expected {
            findings.violation(format!(
                "{id}: the caller's result is {got:?}, expected {expected:?}"
            ));
        }
    }
    let mut seen = HashMap::new();
    for (id, token) in &tokens {
        if let Some(other) = seen.insert(token.clone(), id.clone()) {
            findings.violation(format!("{id} and {other} hold the same token {token}"));
        }
    }
    tokens
}

/// The handler's records: one answered start per request id (the caller's token), one
/// succeeded operation per token, one completion per token, none given up.
fn check_handler_records(
    inputs: &Inputs<'_>,
    ids: &[String],
    tokens: &BTreeMap<String, String>,
    findings: &mut Findings,
) {
    let records = inputs.handler;
    let starts: HashMap<&str, (&Option<String>, &Option<String>)> = records
        .starts
        .iter()
        .map(|(id, answer, token)| (id.as_str(), (answer, token)))
        .collect();
    if records.starts.len() != ids.len() {
        findings.violation(format!(
            "the handler recorded {} starts for {} checks",
            records.starts.len(),
            ids.len()
        ));
    }
    let operations: HashMap<&str, (&str, &str)> = records
        .operations
        .iter()
        .map(|(token, id, state)| (token.as_str(), (id.as_str(), state.as_str())))
        .collect();
    if records.operations.len() != ids.len() {
        findings.violation(format!(
            "the handler recorded {} operations for {} checks",
            records.operations.len(),
            ids.len()
        ));
    }
    let mut deliveries: HashMap<&str, Vec<(&str, &Option<String>)>> = HashMap::new();
    for (token, state, error) in &records.deliveries {
        deliveries
            .entry(token.as_str())
            .or_default()
            .push((state.as_str(), error));
    }
    if records.deliveries.len() != ids.len() {
        findings.violation(format!(
            "the handler enqueued {} completions for {} checks",
            records.deliveries.len(),
            ids.len()
        ));
    }
    for id in ids {
        let Some(token) = tokens.get(id) else {
            continue;
        };
        match starts.get(id.as_str()) {
            Some((Some(answer), Some(t))) if answer == "async" && t == token => {}
            other => findings.violation(format!(
                "{id}: the handler's recorded answer is {other:?}, the caller holds token {token}"
            )),
        }
        match operations.get(token.as_str()) {
            Some((op_id, "succeeded")) if op_id == id => {}
            other => findings.violation(format!(
                "{id}: the handler's operation {token} is {other:?}, expected succeeded"
            )),
        }
        match deliveries.get(token.as_str()).map(Vec::as_slice) {
            Some([("delivered", _)]) => {}
            // The caller recorded this completion (it holds it, succeeded): a copy sent again
            // after a kill cut its acknowledgement short waits for a receiver that has exited.
            Some([("pending", _)]) => findings.redeliveries_pending += 1,
            other => findings.violation(format!(
                "{id}: the completion of {token} is {other:?}, expected one delivered"
            )),
        }
    }
}

/// One start or resumption in the log, with the handler process that ran it.
struct Line<'a> {
    offset: u64,
    life: usize,
    token: Option<&'a str>,
}

/// The executions log against the stores and the kills.
fn check_executions(
    inputs: &Inputs<'_>,
    tokens: &BTreeMap<String, String>,
    findings: &mut Findings,
) {
    let lives = &inputs.trace.lives;
    let mut starts: BTreeMap<&str, Vec<Line<'_>>> = BTreeMap::new();
    let mut resumes: BTreeMap<&str, Vec<Line<'_>>> = BTreeMap::new();
    let mut start_tokens = HashMap::new();
    for (offset, e) in inputs.executions {
        let Some(life) = lives.iter().position(|l| *offset < l.log_end) else {
            findings.violation(format!("a line at {offset} after the last handler died"));
            continue;
        };
        if e.operation != "checkTransaction" || !tokens.contains_key(&e.request_id) {
            findings.violation(format!("an execution of no check of the run: {e:?}"));
            continue;
        }
        let line = Line {
            offset: *offset,
            life,
            token: e.token.as_deref(),
        };
        if e.is_start() {
            let Some(token) = line.token else {
                findings.violation(format!("a start without its token: {e:?}"));
                continue;
            };
            if let Some(other) = start_tokens.insert(token, &e.request_id) {
                findings.violation(format!(
                    "token {token} answered twice: {} and {other}",
                    e.request_id
                ));
            }
            starts.entry(&e.request_id).or_default().push(line);
        } else {
            resumes.entry(&e.request_id).or_default().push(line);
        }
    }
    for (id, token) in tokens {
        let lines = starts.get(id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let answered: Vec<&Line<'_>> = lines
            .iter()
            .filter(|l| l.token == Some(token.as_str()))
            .collect();
        let [answered] = answered[..] else {
            findings.violation(format!(
                "{id}: {} start executions answered with the caller's token {token} \
                 (expected exactly one; {} starts in all)",
                answered.len(),
                lines.len()
            ));
            continue;
        };
        findings.committed += 1;
        for line in lines.iter().filter(|l| l.offset != answered.offset) {
            let life = &lives[line.life];
            let warned = life.warned.contains(id);
            let killed_in_flight =
                life.crashed && life.snapshot.open_claims.contains(id) && answered.life > line.life;
            if killed_in_flight {
                findings.interrupted_by_kills += 1;
            } else if warned {
                findings.interrupted_warned += 1;
            } else {
                findings.violation(format!(
                    "{id}: a start in fraud-handler #{} (token {:?}) was neither answered nor \
                     in flight when a handler died",
                    life.n, line.token
                ));
            }
            if line.offset > answered.offset && !warned {
                findings.violation(format!(
                    "{id}: run again in fraud-handler #{} after its answer was recorded by #{}",
                    life.n, lives[answered.life].n
                ));
            }
        }
        check_resumes(inputs, id, token, answered.life, &resumes, findings);
    }
    for (index, life) in lives.iter().enumerate() {
        let next = lives.get(index + 1);
        for (id, token) in &life.snapshot.running {
            if tokens.get(id) != Some(token) {
                findings.violation(format!(
                    "{id}: operation {token} running in fraud-handler #{} is not the caller's",
                    life.n
                ));
            }
            let resumed_next = resumes
                .get(id.as_str())
                .is_some_and(|r| r.iter().any(|l| l.life == index + 1));
            let still_running =
                next.is_some_and(|n| n.crashed && n.snapshot.running.contains_key(id));
            if !life.crashed || !(resumed_next || still_running) {
                findings.violation(format!(
                    "{id}: running when fraud-handler #{} died, and not resumed by the next",
                    life.n
                ));
            }
        }
        if !life.crashed && !life.snapshot.open_claims.is_empty() {
            findings.violation(format!(
                "starts never answered at the end: {:?}",
                life.snapshot.open_claims
            ));
        }
    }
}

/// Each resumption of `id` is of its answered operation, by the process after one that died
/// while it ran, once per process.
fn check_resumes(
    inputs: &Inputs<'_>,
    id: &str,
    token: &str,
    answered_life: usize,
    resumes: &BTreeMap<&str, Vec<Line<'_>>>,
    findings: &mut Findings,
) {
    let lives = &inputs.trace.lives;
    let mut per_life = BTreeSet::new();
    for line in resumes.get(id).map(Vec::as_slice).unwrap_or(&[]) {
        findings.resumed += 1;
        if !per_life.insert(line.life) {
            findings.violation(format!(
                "{id}: resumed twice by fraud-handler #{}",
                lives[line.life].n
            ));
        }
        let previous = line.life.checked_sub(1).map(|p| &lives[p]);
        let was_running = previous.is_some_and(|p| {
            p.crashed && p.snapshot.running.get(id).map(String::as_str) == Some(token)
        });
        if !was_running || answered_life >= line.life {
            findings.violation(format!(
                "{id}: resumed by fraud-handler #{} though it was not running when the previous \
                 one died",
                lives[line.life].n
            ));
        }
    }
}

/// The kills hit work in flight: at least one handler kill with starts unanswered or checks
/// running, at least one payments kill with operations unfinished.
fn check_kills(inputs: &Inputs<'_>, findings: &mut Findings) {
    let trace = inputs.trace;
    let handler_kills: Vec<_> = trace.lives.iter().filter(|l| l.crashed).collect();
    if !handler_kills.is_empty()
        && !handler_kills
            .iter()
            .any(|l| !l.snapshot.open_claims.is_empty() || !l.snapshot.running.is_empty())
    {
        findings.violation("no handler kill hit work in flight".into());
    }
    if !trace.payments_kills.is_empty() && !trace.payments_kills.iter().any(|k| k.unfinished > 0) {
        findings.violation("no payments kill hit work in flight".into());
    }
}
