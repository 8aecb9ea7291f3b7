-- A repeated start that re-targets an operation's completion (HandlerStore::retarget_async) finds
-- the operation's waiting delivery by token.
CREATE INDEX completion_deliveries_token ON completion_deliveries (token)
    WHERE state = 'pending';
