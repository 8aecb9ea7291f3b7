#!/usr/bin/env python3
"""Temporal -> Rust: Temporal workflows call the Rust `fraud-handler` (fraud.v1) through endpoints
with external target URLs, and every outcome is checked against what the workflow saw and what
the handler logged (its --event-log). Prints `PASS name (detail)` or `FAIL name: why` per check;
exits 1 if any check failed.

Usage: temporal_to_rust.py --fraud-log F --slow-log S --flaky-log L --unavailable-first N
                           [--results FILE]
  endpoints (created by run.sh): fraud -> fraud-handler; fraud-slow -> fraud-handler whose checks
  take minutes (to be canceled); fraud-flaky -> fraud-handler --unavailable-first N.
Env: TEMPORAL_ADDRESS
"""
import argparse
import asyncio
import json
import os
import sys
import time

from temporal_caller import run_scenarios

SERVICE = "fraud.v1"
APPROVAL_LIMIT = 10_000.0


def quick_score(user_id: str) -> int:
    """fraud.v1's quick score, computed independently of the Rust code: FNV-1a 64 of the id, mod 100."""
    h = 0xCBF29CE484222325
    for b in user_id.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % 100


def risk_score(amount: float, user_id: str) -> int:
    return min(int(min(amount / APPROVAL_LIMIT * 50.0, 50.0)) + quick_score(user_id) // 2, 100)


SCENARIOS = [
    # "typed": called with the Python types generated from fraud.v1's committed definition.
    {"name": "sync-getQuickScore", "endpoint": "fraud", "service": SERVICE, "typed": True,
     "operation": "getQuickScore", "input": {"userId": "user-ada"}},
    {"name": "async-checkTransaction", "endpoint": "fraud", "service": SERVICE, "typed": True,
     "operation": "checkTransaction",
     "input": {"transactionId": "tx-t2r-1", "amount": 250.0, "userId": "user-ada"}},
    {"name": "failed-checkTransaction", "endpoint": "fraud", "service": SERVICE, "typed": True,
     "operation": "checkTransaction",
     "input": {"transactionId": "tx-t2r-2", "amount": -5.0, "userId": "user-ada"}},
    {"name": "cancel-checkTransaction", "endpoint": "fraud-slow", "service": SERVICE,
     "operation": "checkTransaction", "cancel_after": 0.2,
     "input": {"transactionId": "tx-t2r-3", "amount": 99.0, "userId": "user-ada"}},
    {"name": "retry-unavailable", "endpoint": "fraud-flaky", "service": SERVICE,
     "operation": "getQuickScore", "input": {"userId": "user-bob"}},
]


class CheckFailed(Exception):
    pass


def expect(condition: bool, why: str) -> None:
    if not condition:
        raise CheckFailed(why)


def read_events(path: str) -> list:
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def wait_for_event(path: str, match, seconds: float = 5.0):
    """The first event of the log at `path` that `match`es, polling for a while: the handler logs
    a completion once its delivery is answered, which may be just after the workflow saw it."""
    deadline = time.monotonic() + seconds
    while True:
        for event in read_events(path):
            if match(event):
                return event
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def completion_for(path: str, token: str, state: str) -> str:
    event = wait_for_event(path, lambda e: e.get("event") == "completion" and e.get("token") == token)
    expect(event is not None, f"the handler logged no completion for token {token!r}: {read_events(path)}")
    expect(event["state"] == state, f"the handler completed token {token!r} as {event['state']}, not {state}")
    expect(event["delivered"] is True, f"the handler could not deliver the completion of {token!r}")
    return f"handler completed {token[:8]}… as {state}"


def check_sync(r: dict, logs: dict) -> str:
    expect("ok" in r, f"the workflow failed: {r.get('error')}")
    expected = {"score": quick_score("user-ada")}
    expect(r["ok"] == expected, f"got {r['ok']}, expected {expected}")
    expect(r["token"] is None, f"expected a sync answer, got token {r['token']!r}")
    expect(r.get("type") == "GetQuickScoreOutput", f"the result is not the generated type: {r.get('type')}")
    started = wait_for_event(logs["fraud"], lambda e: e.get("operation") == "getQuickScore")
    expect(started is not None and started["answer"] == "sync", f"handler log: {started}")
    expect(started["requestId"] != "", "Temporal sent no request id")
    return f"score {r['ok']['score']}, answered sync to request {started['requestId'][:8]}…"


def check_async(r: dict, logs: dict) -> str:
    expect("ok" in r, f"the workflow failed: {r.get('error')}")
    expected = {"approved": True, "riskScore": risk_score(250.0, "user-ada")}
    expect(r["ok"] == expected, f"got {r['ok']}, expected {expected}")
    expect(bool(r["token"]), "expected an async start with a token, got a sync answer")
    expect(r.get("type") == "CheckTransactionOutput", f"the result is not the generated type: {r.get('type')}")
    return f"approved, riskScore {r['ok']['riskScore']} (a generated {r['type']}); " + completion_for(logs["fraud"], r["token"], "succeeded")


def check_failed(r: dict, logs: dict) -> str:
    expect("error" in r, f"expected a failure, got {r.get('ok')}")
    chain = r["error"]
    expect(chain[0].startswith("NexusOperationError"), f"the outermost error is not a NexusOperationError: {chain}")
    message = "transaction tx-t2r-2 has an invalid amount -5"
    expect(any(message in c for c in chain), f"no {message!r} in the failure chain {chain}")
    expect(bool(r["token"]), "expected an async start with a token")
    return " <- ".join(chain) + "; " + completion_for(logs["fraud"], r["token"], "failed")


def check_cancel(r: dict, logs: dict) -> str:
    expect("error" in r, f"expected a cancellation, got {r.get('ok')}")
    chain = r["error"]
    expect(chain[0].startswith("NexusOperationError"), f"the outermost error is not a NexusOperationError: {chain}")
    expect(any(c.startswith("CancelledError") for c in chain), f"the workflow saw no cancellation: {chain}")
    expect(bool(r["token"]), "expected an async start with a token")
    return " <- ".join(chain) + "; " + completion_for(logs["slow"], r["token"], "canceled")


def check_retry(r: dict, logs: dict, unavailable_first: int) -> str:
    expect("ok" in r, f"the workflow failed: {r.get('error')}")
    expected = {"score": quick_score("user-bob")}
    expect(r["ok"] == expected, f"got {r['ok']}, expected {expected}")
    starts = [e for e in read_events(logs["flaky"]) if e.get("event") == "start"]
    ids = {e["requestId"] for e in starts}
    expect(len(ids) == 1 and "" not in ids, f"expected one request id on every attempt, got {starts}")
    answers = [(e["attempt"], e["answer"]) for e in starts]
    expected_answers = [(n, "unavailable") for n in range(1, unavailable_first + 1)]
    expected_answers.append((unavailable_first + 1, "sync"))
    expect(answers == expected_answers, f"attempts {answers}, expected {expected_answers}")
    return f"{len(starts)} attempts of request {ids.pop()[:8]}…: " + ", ".join(a for _, a in answers)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fraud-log", required=True)
    parser.add_argument("--slow-log", required=True)
    parser.add_argument("--flaky-log", required=True)
    parser.add_argument("--unavailable-first", type=int, required=True,
                        help="how many attempts of each request fraud-flaky refuses")
    parser.add_argument("--results", help="also write the workflows' outcomes here, as JSON lines")
    args = parser.parse_args()
    logs = {"fraud": args.fraud_log, "slow": args.slow_log, "flaky": args.flaky_log}
    address = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
    started = time.monotonic()
    try:
        results = asyncio.run(run_scenarios(SCENARIOS, address))
    except Exception as e:  # noqa: BLE001 - any failure to run the workflows is one failed check
        print(f"FAIL temporal->rust/workflows: cannot run the caller workflows: {e!r}", flush=True)
        return 1
    print(f"temporal->rust: {len(results)} workflows done in {time.monotonic() - started:.1f} s",
          file=sys.stderr, flush=True)
    if args.results:
        with open(args.results, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    checks = {
        "sync-getQuickScore": check_sync,
        "async-checkTransaction": check_async,
        "failed-checkTransaction": check_failed,
        "cancel-checkTransaction": check_cancel,
        "retry-unavailable": lambda r, logs: check_retry(r, logs, args.unavailable_first),
    }
    failed = 0
    for r in results:
        name = f"temporal->rust/{r['name']}"
        try:
            detail = checks[r["name"]](r, logs)
            print(f"PASS {name} ({detail})", flush=True)
        except CheckFailed as e:
            failed += 1
            print(f"FAIL {name}: {e} [workflow {r['workflow']}]", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Avoids a crash of the SDK's native bridge at interpreter exit (temporalio 1.35).
    os._exit(code)
