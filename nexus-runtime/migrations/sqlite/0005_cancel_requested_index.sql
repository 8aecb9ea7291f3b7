-- A lease renewal looks for the cancel requests recorded for the running operations an owner holds
-- (HandlerStore::cancel_requested_async): it reads the few operations with one, not the others.
CREATE INDEX handler_operations_cancel_requested ON handler_operations (lease_owner, token)
    WHERE state = 'running' AND cancel_requested_at_us IS NOT NULL;
