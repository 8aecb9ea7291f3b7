-- The operation store (see nexus-runtime/src/store). Times are microseconds since the Unix epoch
-- (`*_us`); payload bodies are blobs, their content headers and every other structure JSON text.
-- The SQLite schema (../sqlite) is the same but for BLOB instead of BYTEA.

-- Caller side: one row per operation this process started, written before its first attempt.
CREATE TABLE caller_operations (
    id                            TEXT    NOT NULL PRIMARY KEY,
    endpoint                      TEXT    NOT NULL,
    service                       TEXT    NOT NULL,
    operation                     TEXT    NOT NULL,
    request_id                    TEXT    NOT NULL,
    input_data                    BYTEA   NOT NULL,
    input_headers                 TEXT    NOT NULL,
    options                       TEXT    NOT NULL,
    state                         TEXT    NOT NULL CHECK (state IN ('scheduled', 'backing_off',
                                      'blocked', 'started', 'succeeded', 'failed', 'canceled',
                                      'timed_out')),
    version                       BIGINT  NOT NULL,
    attempt                       BIGINT  NOT NULL,
    next_attempt_at_us            BIGINT,
    last_failure                  TEXT,
    target                        TEXT,
    token                         TEXT,
    start_links                   TEXT    NOT NULL,
    result_data                   BYTEA,
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
    UNIQUE (endpoint, service, operation, request_id)
);
CREATE INDEX caller_operations_unfinished ON caller_operations (scheduled_at_us)
    WHERE state NOT IN ('succeeded', 'failed', 'canceled', 'timed_out');
CREATE INDEX caller_operations_lease_owner ON caller_operations (lease_owner)
    WHERE lease_owner IS NOT NULL;
CREATE INDEX caller_operations_closed ON caller_operations (closed_at_us)
    WHERE closed_at_us IS NOT NULL;

-- Handler side: one row per start request (service, operation, request id): the claim of the
-- request running the handler, then the answer every retry gets.
CREATE TABLE handler_starts (
    service             TEXT   NOT NULL,
    operation           TEXT   NOT NULL,
    request_id          TEXT   NOT NULL,
    claim_id            TEXT,
    claim_expires_at_us BIGINT,
    answer              TEXT   CHECK (answer IN ('sync', 'async', 'failed')),
    output_data         BYTEA,
    output_headers      TEXT,
    token               TEXT,
    failure             TEXT,
    links               TEXT,
    created_at_us       BIGINT NOT NULL,
    answered_at_us      BIGINT,
    PRIMARY KEY (service, operation, request_id)
);

-- Handler side: async operations by token.
CREATE TABLE handler_operations (
    token                  TEXT    NOT NULL PRIMARY KEY,
    service                TEXT    NOT NULL,
    operation              TEXT    NOT NULL,
    request_id             TEXT    NOT NULL,
    input_data             BYTEA   NOT NULL,
    input_headers          TEXT    NOT NULL,
    headers                TEXT    NOT NULL,
    links                  TEXT    NOT NULL,
    callback_url           TEXT,
    callback_headers       TEXT,
    state                  TEXT    NOT NULL CHECK (state IN ('running', 'succeeded', 'failed',
                               'canceled')),
    resumable              BOOLEAN NOT NULL,
    cancel_requested_at_us BIGINT,
    deadline_us            BIGINT,
    started_at_us          BIGINT  NOT NULL,
    closed_at_us           BIGINT,
    lease_owner            TEXT,
    lease_expires_at_us    BIGINT
);
CREATE INDEX handler_operations_running ON handler_operations (started_at_us)
    WHERE state = 'running';

-- Handler side: the outbox of completions, enqueued in the transaction that finishes the
-- operation.
CREATE TABLE completion_deliveries (
    id                 TEXT   NOT NULL PRIMARY KEY,
    token              TEXT   NOT NULL,
    url                TEXT   NOT NULL,
    headers            TEXT   NOT NULL,
    outcome            TEXT   NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'canceled')),
    result_data        BYTEA,
    result_headers     TEXT,
    failure            TEXT,
    links              TEXT   NOT NULL,
    start_time_us      BIGINT,
    close_time_us      BIGINT,
    state              TEXT   NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts           BIGINT NOT NULL,
    next_attempt_at_us BIGINT NOT NULL,
    last_error         TEXT,
    created_at_us      BIGINT NOT NULL,
    finished_at_us     BIGINT
);
CREATE INDEX completion_deliveries_due ON completion_deliveries (next_attempt_at_us)
    WHERE state = 'pending';
CREATE INDEX completion_deliveries_finished ON completion_deliveries (finished_at_us)
    WHERE state <> 'pending';
