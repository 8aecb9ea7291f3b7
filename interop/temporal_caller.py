#!/usr/bin/env python3
"""Temporal -> Rust, Temporal's side: a workflow calls a Nexus endpoint (the Rust handler behind an
external-URL endpoint) for each scenario, and reports what the workflow saw, one JSON object per
scenario:
  {"name", "workflow", "token": <operation token, null when answered synchronously>,
   "ok": <result>}  or  {..., "error": [<failure chain, outermost first>]}

Usable as a module (run_scenarios) or as a program: temporal_caller.py SCENARIOS_JSON prints one
JSON line per scenario.
  SCENARIOS_JSON: a list of {"name", "endpoint", "service", "operation", "input",
                  "cancel_after" (seconds, optional: cancel the operation once started and that
                  long elapsed, then wait for it to complete as canceled),
                  "timeout" (schedule-to-close, seconds, default 30)}
Env: TEMPORAL_ADDRESS (default 127.0.0.1:7233)
"""
import asyncio
import json
import os
import sys
import uuid
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import FailureError
from temporalio.worker import Worker

TASK_QUEUE = "nexus-rs-interop-caller"


def failure_chain(err: BaseException) -> list:
    """The exception and its causes as "Type: message", outermost first."""
    chain = []
    current = err
    while current is not None and len(chain) < 20:
        chain.append(f"{type(current).__name__}: {current}")
        current = getattr(current, "cause", None) or current.__cause__
    return chain


@workflow.defn
class ScenarioWorkflow:
    @workflow.run
    async def run(self, args: dict) -> Any:
        client = workflow.create_nexus_client(service=args["service"], endpoint=args["endpoint"])
        handle = await client.start_operation(
            args["operation"],
            args["input"],
            schedule_to_close_timeout=timedelta(seconds=args.get("timeout", 30)),
            # Wait for the handler's own outcome: a canceled operation is seen only once the
            # handler completed it as canceled.
            cancellation_type=workflow.NexusOperationCancellationType.WAIT_COMPLETED,
            headers={"x-interop": "temporal"},
        )
        token = handle.operation_token
        if args.get("cancel_after") is not None:
            await workflow.sleep(args["cancel_after"])
            handle.cancel()
        try:
            return {"token": token, "ok": await handle}
        except FailureError as e:
            return {"token": token, "error": failure_chain(e)}


async def run_one(client: Client, scenario: dict) -> dict:
    wid = f"interop-{scenario['name']}-{uuid.uuid4().hex[:8]}"
    try:
        outcome = await client.execute_workflow(
            ScenarioWorkflow.run,
            scenario,
            id=wid,
            task_queue=TASK_QUEUE,
            execution_timeout=timedelta(seconds=scenario.get("timeout", 30) + 15),
        )
        return {"name": scenario["name"], "workflow": wid, **outcome}
    except WorkflowFailureError as e:
        return {"name": scenario["name"], "workflow": wid, "token": None,
                "error": ["WorkflowFailureError"] + failure_chain(e.cause)}


async def run_scenarios(scenarios: list, address: str) -> list:
    """Runs every scenario concurrently, each in its own workflow, with a worker for them."""
    client = await Client.connect(address)
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[ScenarioWorkflow]):
        return list(await asyncio.gather(*(run_one(client, s) for s in scenarios)))


async def main() -> None:
    scenarios = json.loads(sys.argv[1])
    results = await run_scenarios(scenarios, os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    for r in results:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    # Avoids a crash of the SDK's native bridge at interpreter exit (temporalio 1.35).
    os._exit(0)
