-- The tables' CHECK constraints and the unfinished operations' index, written without IN lists.
-- SQLite evaluates `x IN ('a', 'b', 'c')` (three or more constants) by building a temporary
-- table of the constants, once per statement run: a pager opened and closed at every insert or
-- update of these tables, which cost about a tenth of a deduplicated start's time. Comparisons
-- joined with OR (and AND for NOT IN) say the same and build nothing. PostgreSQL has no such
-- cost, and its schema keeps its IN lists.
--
-- SQLite cannot change a CHECK constraint in place: each table is rebuilt with the same columns,
-- in the same order, and its indexes made again.

CREATE TABLE caller_operations_rebuilt (
    id                            TEXT    NOT NULL PRIMARY KEY,
    endpoint                      TEXT    NOT NULL,
    service                       TEXT    NOT NULL,
    operation                     TEXT    NOT NULL,
    request_id                    TEXT    NOT NULL,
    input_data                    BLOB    NOT NULL,
    input_headers                 TEXT    NOT NULL,
    options                       TEXT    NOT NULL,
    state                         TEXT    NOT NULL CHECK (state = 'scheduled'
                                      OR state = 'backing_off' OR state = 'blocked'
                                      OR state = 'started' OR state = 'succeeded'
                                      OR state = 'failed' OR state = 'canceled'
                                      OR state = 'timed_out'),
    version                       BIGINT  NOT NULL,
    attempt                       BIGINT  NOT NULL,
    next_attempt_at_us            BIGINT,
    last_failure                  TEXT,
    target                        TEXT,
    token                         TEXT,
    start_links                   TEXT    NOT NULL,
    result_data                   BLOB,
    result_headers                TEXT,
    error                         TEXT,
    completion_links              TEXT    NOT NULL,
    cancel_requested_at_us        BIGINT,
    scheduled_at_us               BIGINT  NOT NULL,
    started_at_us                 BIGINT,
    closed_at_us                  BIGINT,
    schedule_to_close_deadline_us BIGINT,
    schedule_to_start_deadline_us BIGINT,
    start_to_close_deadline_us    BIGINT,
    lease_owner                   TEXT,
    lease_expires_at_us           BIGINT,
    callback_secret               TEXT,
    UNIQUE (endpoint, service, operation, request_id)
);
INSERT INTO caller_operations_rebuilt SELECT id, endpoint, service, operation, request_id,
    input_data, input_headers, options, state, version, attempt, next_attempt_at_us,
    last_failure, target, token, start_links, result_data, result_headers, error,
    completion_links, cancel_requested_at_us, scheduled_at_us, started_at_us, closed_at_us,
    schedule_to_close_deadline_us, schedule_to_start_deadline_us, start_to_close_deadline_us,
    lease_owner, lease_expires_at_us, callback_secret
    FROM caller_operations;
DROP TABLE caller_operations;
ALTER TABLE caller_operations_rebuilt RENAME TO caller_operations;
-- The queries that read unfinished operations spell the same condition (`unfinished!` in
-- store/sqlite/rows.rs), so that this index serves them.
CREATE INDEX caller_operations_unfinished ON caller_operations (scheduled_at_us)
    WHERE state <> 'succeeded' AND state <> 'failed' AND state <> 'canceled'
    AND state <> 'timed_out';
CREATE INDEX caller_operations_lease_owner ON caller_operations (lease_owner)
    WHERE lease_owner IS NOT NULL;
CREATE INDEX caller_operations_closed ON caller_operations (closed_at_us)
    WHERE closed_at_us IS NOT NULL;

CREATE TABLE handler_starts_rebuilt (
    principal           TEXT   NOT NULL DEFAULT '',
    service             TEXT   NOT NULL,
    operation           TEXT   NOT NULL,
    request_id          TEXT   NOT NULL,
    claim_id            TEXT,
    claim_expires_at_us BIGINT,
    answer              TEXT   CHECK (answer = 'sync' OR answer = 'async' OR answer = 'failed'),
    output_data         BLOB,
    output_headers      TEXT,
    token               TEXT,
    failure             TEXT,
    links               TEXT,
    created_at_us       BIGINT NOT NULL,
    answered_at_us      BIGINT,
    PRIMARY KEY (principal, service, operation, request_id)
);
INSERT INTO handler_starts_rebuilt SELECT principal, service, operation, request_id, claim_id,
    claim_expires_at_us, answer, output_data, output_headers, token, failure, links,
    created_at_us, answered_at_us
    FROM handler_starts;
DROP TABLE handler_starts;
ALTER TABLE handler_starts_rebuilt RENAME TO handler_starts;

CREATE TABLE handler_operations_rebuilt (
    token                  TEXT    NOT NULL PRIMARY KEY,
    service                TEXT    NOT NULL,
    operation              TEXT    NOT NULL,
    request_id             TEXT    NOT NULL,
    input_data             BLOB    NOT NULL,
    input_headers          TEXT    NOT NULL,
    headers                TEXT    NOT NULL,
    links                  TEXT    NOT NULL,
    callback_url           TEXT,
    callback_headers       TEXT,
    state                  TEXT    NOT NULL CHECK (state = 'running' OR state = 'succeeded'
                               OR state = 'failed' OR state = 'canceled'),
    resumable              BOOLEAN NOT NULL,
    cancel_requested_at_us BIGINT,
    deadline_us            BIGINT,
    started_at_us          BIGINT  NOT NULL,
    closed_at_us           BIGINT,
    lease_owner            TEXT,
    lease_expires_at_us    BIGINT,
    principal              TEXT    NOT NULL DEFAULT '',
    principal_kind         TEXT    NOT NULL DEFAULT 'anonymous'
);
INSERT INTO handler_operations_rebuilt SELECT token, service, operation, request_id,
    input_data, input_headers, headers, links, callback_url, callback_headers, state,
    resumable, cancel_requested_at_us, deadline_us, started_at_us, closed_at_us, lease_owner,
    lease_expires_at_us, principal, principal_kind
    FROM handler_operations;
DROP TABLE handler_operations;
ALTER TABLE handler_operations_rebuilt RENAME TO handler_operations;
CREATE INDEX handler_operations_running ON handler_operations (started_at_us)
    WHERE state = 'running';
CREATE INDEX handler_operations_cancel_requested ON handler_operations (lease_owner, token)
    WHERE state = 'running' AND cancel_requested_at_us IS NOT NULL;

CREATE TABLE completion_deliveries_rebuilt (
    id                 TEXT   NOT NULL PRIMARY KEY,
    token              TEXT   NOT NULL,
    url                TEXT   NOT NULL,
    headers            TEXT   NOT NULL,
    outcome            TEXT   NOT NULL CHECK (outcome = 'succeeded' OR outcome = 'failed'
                              OR outcome = 'canceled'),
    result_data        BLOB,
    result_headers     TEXT,
    failure            TEXT,
    links              TEXT   NOT NULL,
    start_time_us      BIGINT,
    close_time_us      BIGINT,
    state              TEXT   NOT NULL CHECK (state = 'pending' OR state = 'delivered'
                              OR state = 'dead'),
    attempts           BIGINT NOT NULL,
    next_attempt_at_us BIGINT NOT NULL,
    last_error         TEXT,
    created_at_us      BIGINT NOT NULL,
    finished_at_us     BIGINT
);
INSERT INTO completion_deliveries_rebuilt SELECT id, token, url, headers, outcome, result_data,
    result_headers, failure, links, start_time_us, close_time_us, state, attempts,
    next_attempt_at_us, last_error, created_at_us, finished_at_us
    FROM completion_deliveries;
DROP TABLE completion_deliveries;
ALTER TABLE completion_deliveries_rebuilt RENAME TO completion_deliveries;
CREATE INDEX completion_deliveries_due ON completion_deliveries (next_attempt_at_us)
    WHERE state = 'pending';
CREATE INDEX completion_deliveries_finished ON completion_deliveries (finished_at_us)
    WHERE state <> 'pending';
CREATE INDEX completion_deliveries_token ON completion_deliveries (token)
    WHERE state = 'pending';
