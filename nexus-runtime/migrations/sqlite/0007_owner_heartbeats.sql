-- Leases renewed by their owner's heartbeat. A renewal used to rewrite the lease of every
-- running operation its owner holds (every third of a lease: at 100,000 running operations, every
-- row rewritten and its pages logged every ten seconds, the writes queued behind it waiting). It
-- now writes the owner's row alone: a lease is live while its own expiry (set when the operation
-- was started or claimed) or its owner's heartbeat is in the future.
CREATE TABLE handler_owners (
    owner         TEXT   NOT NULL PRIMARY KEY,
    expires_at_us BIGINT NOT NULL
);

-- The operations as their leases stand: each lease's expiry is the later of its own and its
-- owner's heartbeat. What reads operations reads this view; what writes them, the table.
CREATE VIEW handler_operations_leased AS
SELECT h.token, h.service, h.operation, h.request_id, h.input_data, h.input_headers, h.headers,
    h.links, h.callback_url, h.callback_headers, h.state, h.resumable, h.cancel_requested_at_us,
    h.deadline_us, h.started_at_us, h.closed_at_us, h.lease_owner,
    CASE WHEN o.expires_at_us > h.lease_expires_at_us THEN o.expires_at_us
        ELSE h.lease_expires_at_us END AS lease_expires_at_us,
    h.principal, h.principal_kind
FROM handler_operations h LEFT JOIN handler_owners o ON o.owner = h.lease_owner;

-- The same for a caller's replicas: their leases on unfinished operations, renewed by one
-- heartbeat per replica.
CREATE TABLE caller_owners (
    owner         TEXT   NOT NULL PRIMARY KEY,
    expires_at_us BIGINT NOT NULL
);

CREATE VIEW caller_operations_leased AS
SELECT c.id, c.endpoint, c.service, c.operation, c.request_id, c.input_data, c.input_headers,
    c.options, c.state, c.version, c.attempt, c.next_attempt_at_us, c.last_failure, c.target,
    c.token, c.start_links, c.result_data, c.result_headers, c.error, c.completion_links,
    c.cancel_requested_at_us, c.scheduled_at_us, c.started_at_us, c.closed_at_us,
    c.schedule_to_close_deadline_us, c.schedule_to_start_deadline_us,
    c.start_to_close_deadline_us, c.lease_owner,
    CASE WHEN o.expires_at_us > c.lease_expires_at_us THEN o.expires_at_us
        ELSE c.lease_expires_at_us END AS lease_expires_at_us,
    c.callback_secret
FROM caller_operations c LEFT JOIN caller_owners o ON o.owner = c.lease_owner;
