#!/usr/bin/env python3
"""Temporal side of the interop test: a workflow calls a Nexus endpoint (the Rust handler behind an
external-URL endpoint) for each scenario given on the command line, and prints one JSON line per
scenario: {"name": ..., "ok": <result>} or {"name": ..., "error": [<failure chain>]}.

Usage: temporal_caller.py SCENARIOS_JSON
  SCENARIOS_JSON: a list of {"name", "endpoint", "service", "operation", "input",
                  "cancel_after" (seconds, optional), "timeout" (seconds, optional)}
Env: TEMPORAL_ADDRESS (default 127.0.0.1:17233)
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
from temporalio.worker import Worker

TASK_QUEUE = "nexus-rs-interop-caller"


@workflow.defn
class ScenarioWorkflow:
    @workflow.run
    async def run(self, args: dict) -> Any:
        client = workflow.create_nexus_client(service=args["service"], endpoint=args["endpoint"])
        timeout = timedelta(seconds=args.get("timeout", 30))
        if args.get("cancel_after") is not None:
            handle = await client.start_operation(
                args["operation"],
                args["input"],
                schedule_to_close_timeout=timeout,
                cancellation_type=workflow.NexusOperationCancellationType.WAIT_COMPLETED,
            )
            await workflow.sleep(args["cancel_after"])
            handle.cancel()
            return await handle
        return await client.execute_operation(
            args["operation"],
            args["input"],
            schedule_to_close_timeout=timeout,
            headers={"x-interop": "temporal"},
        )


def failure_chain(err: BaseException) -> list:
    chain = []
    current = err
    while current is not None:
        chain.append(f"{type(current).__name__}: {current}")
        current = getattr(current, "cause", None) or current.__cause__
    return chain


async def run_one(client: Client, scenario: dict) -> dict:
    wid = f"interop-{scenario['name']}-{uuid.uuid4().hex[:8]}"
    try:
        result = await client.execute_workflow(
            ScenarioWorkflow.run,
            scenario,
            id=wid,
            task_queue=TASK_QUEUE,
            execution_timeout=timedelta(seconds=scenario.get("timeout", 30) + 15),
        )
        return {"name": scenario["name"], "workflow": wid, "ok": result}
    except WorkflowFailureError as e:
        return {"name": scenario["name"], "workflow": wid, "error": failure_chain(e.cause)}


async def main() -> None:
    scenarios = json.loads(sys.argv[1])
    client = await Client.connect(os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:17233"))
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[ScenarioWorkflow]):
        results = await asyncio.gather(*(run_one(client, s) for s in scenarios))
    for r in results:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    # Avoids a crash of the SDK's native bridge at interpreter exit (temporalio 1.35).
    os._exit(0)
