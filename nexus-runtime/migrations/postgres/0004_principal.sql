-- Request ids are scoped by the caller's principal (its authenticated name; '' for the anonymous
-- principal, which every record made before authentication existed keeps): the same request id
-- from two principals is two start requests, and an async operation records who started it (the
-- only principal that may cancel it or re-target its completion).

ALTER TABLE handler_starts ADD COLUMN principal TEXT NOT NULL DEFAULT '';
ALTER TABLE handler_starts DROP CONSTRAINT handler_starts_pkey;
ALTER TABLE handler_starts ADD PRIMARY KEY (principal, service, operation, request_id);

ALTER TABLE handler_operations ADD COLUMN principal TEXT NOT NULL DEFAULT '';
ALTER TABLE handler_operations ADD COLUMN principal_kind TEXT NOT NULL DEFAULT 'anonymous';
