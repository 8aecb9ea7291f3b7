-- Request ids are scoped by the caller's principal (its authenticated name; '' for the anonymous
-- principal, which every record made before authentication existed keeps): the same request id
-- from two principals is two start requests, and an async operation records who started it (the
-- only principal that may cancel it or re-target its completion).

-- SQLite cannot change a primary key in place: the starts table is rebuilt with the principal in
-- its key.
CREATE TABLE handler_starts_by_principal (
    principal           TEXT   NOT NULL DEFAULT '',
    service             TEXT   NOT NULL,
    operation           TEXT   NOT NULL,
    request_id          TEXT   NOT NULL,
    claim_id            TEXT,
    claim_expires_at_us BIGINT,
    answer              TEXT   CHECK (answer IN ('sync', 'async', 'failed')),
    output_data         BLOB,
    output_headers      TEXT,
    token               TEXT,
    failure             TEXT,
    links               TEXT,
    created_at_us       BIGINT NOT NULL,
    answered_at_us      BIGINT,
    PRIMARY KEY (principal, service, operation, request_id)
);
INSERT INTO handler_starts_by_principal (principal, service, operation, request_id, claim_id,
    claim_expires_at_us, answer, output_data, output_headers, token, failure, links,
    created_at_us, answered_at_us)
SELECT '', service, operation, request_id, claim_id, claim_expires_at_us, answer, output_data,
    output_headers, token, failure, links, created_at_us, answered_at_us
FROM handler_starts;
DROP TABLE handler_starts;
ALTER TABLE handler_starts_by_principal RENAME TO handler_starts;

ALTER TABLE handler_operations ADD COLUMN principal TEXT NOT NULL DEFAULT '';
ALTER TABLE handler_operations ADD COLUMN principal_kind TEXT NOT NULL DEFAULT 'anonymous';
