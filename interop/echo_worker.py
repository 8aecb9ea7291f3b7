#!/usr/bin/env python3
"""Rust -> Temporal, Temporal's side: a Temporal worker hosting the Nexus service "EchoService"
(the peer `temporal-echo` calls through a worker-targeted endpoint, and the Temporal benchmark's
handler, `benches/scripts/temporal.sh`):
  - echo     sync operation: returns its input, the request id and the headers it saw
  - echo_wf  workflow-run operation: EchoWorkflow sleeps `sleep` seconds (default 1), returns its input
  - fail_wf  workflow-run operation whose workflow fails (ApplicationError type Boom, non-retryable)
  - fail     sync operation raising a failed OperationError ("failed on purpose")
It also runs CheckTransactionWorkflow, fraud.v1's check as a workflow, for the Rust `fraud-worker
--check-workflow CheckTransactionWorkflow` (its workflow-run implementation of checkTransaction):
input and result are fraud.v1's; a negative amount fails it (ApplicationError type
InvalidAmount), and transactions whose id starts with `slow-` take 10 minutes (to be canceled).

Usage: echo_worker.py      Env: TEMPORAL_ADDRESS (default 127.0.0.1:7233),
                                HANDLER_TQ (default nexus-handler-tq),
                                MAX_NEXUS (concurrent Nexus tasks, default 50)
Prints "worker polling <task queue>" once it runs; stops on SIGTERM.
"""
import asyncio
import os
import signal
import sys
import uuid
from datetime import timedelta
from typing import Any

import nexusrpc
import nexusrpc.handler
from temporalio import nexus, workflow
from temporalio.client import Client
from temporalio.worker import Worker

TQ = os.environ.get("HANDLER_TQ", "nexus-handler-tq")


@workflow.defn
class EchoWorkflow:
    @workflow.run
    async def run(self, inp: Any) -> Any:
        secs = inp.get("sleep", 1) if isinstance(inp, dict) else 1
        await workflow.sleep(timedelta(seconds=secs))
        return {"echoed_by_workflow": inp}


@workflow.defn
class FailingWorkflow:
    @workflow.run
    async def run(self, inp: Any) -> Any:
        from temporalio.exceptions import ApplicationError

        raise ApplicationError("workflow failed on purpose", {"inp": inp}, type="Boom", non_retryable=True)


APPROVAL_LIMIT = 10_000.0


def quick_score(user_id: str) -> int:
    """fraud.v1's quick score: FNV-1a 64 of the user id, mod 100."""
    h = 0xCBF29CE484222325
    for b in user_id.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % 100


@workflow.defn
class CheckTransactionWorkflow:
    @workflow.run
    async def run(self, inp: dict) -> dict:
        from temporalio.exceptions import ApplicationError

        tx, amount = inp["transactionId"], float(inp["amount"])
        await workflow.sleep(timedelta(seconds=600 if tx.startswith("slow-") else 0.3))
        if amount < 0:
            raise ApplicationError(f"transaction {tx} has an invalid amount {amount:g}",
                                   type="InvalidAmount", non_retryable=True)
        risk = min(int(min(amount / APPROVAL_LIMIT * 50.0, 50.0)) + quick_score(inp["userId"]) // 2, 100)
        out = {"approved": amount < APPROVAL_LIMIT, "riskScore": risk}
        if amount >= APPROVAL_LIMIT:
            out["reason"] = f"amount is at or above the limit of {APPROVAL_LIMIT}"
        return out


@nexusrpc.handler.service_handler(name="EchoService")
class EchoServiceHandler:
    @nexusrpc.handler.sync_operation
    async def echo(self, ctx: nexusrpc.handler.StartOperationContext, inp: Any) -> Any:
        return {"echo": inp, "request_id": ctx.request_id, "headers": dict(ctx.headers)}

    @nexus.workflow_run_operation
    async def echo_wf(self, ctx: nexus.WorkflowRunOperationContext, inp: Any) -> nexus.WorkflowHandle[Any]:
        return await ctx.start_workflow(EchoWorkflow.run, inp, id="echo-wf-" + uuid.uuid4().hex[:8])

    @nexus.workflow_run_operation
    async def fail_wf(self, ctx: nexus.WorkflowRunOperationContext, inp: Any) -> nexus.WorkflowHandle[Any]:
        return await ctx.start_workflow(FailingWorkflow.run, inp, id="fail-wf-" + uuid.uuid4().hex[:8])

    @nexusrpc.handler.sync_operation
    async def fail(self, ctx: nexusrpc.handler.StartOperationContext, inp: Any) -> Any:
        raise nexusrpc.OperationError("failed on purpose", state=nexusrpc.OperationErrorState.FAILED)


async def main() -> None:
    client = await Client.connect(os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    worker = Worker(
        client,
        task_queue=TQ,
        workflows=[EchoWorkflow, FailingWorkflow, CheckTransactionWorkflow],
        nexus_service_handlers=[EchoServiceHandler()],
        max_concurrent_nexus_tasks=int(os.environ.get("MAX_NEXUS", "50")),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print(f"worker polling {TQ}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    # Avoids a crash of the SDK's native bridge at interpreter exit (temporalio 1.35).
    os._exit(0)
