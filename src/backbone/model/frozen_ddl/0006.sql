-- Migration 6: policy: users and tokens, the hash-chained audit log, the release ledger, the differential-privacy budget, purges; families' consent
-- Frozen: the DDL exactly as this step ran when it shipped (commit 3dbba30).
-- Never edit it: change the schema by appending a migration.
-- Edited in place once, at 3dbba30 (gov.release_member gained `record`); this is
-- that text. Warehouses made between 2e0e229 and 3dbba30 lack the column.

CREATE TABLE gov.principal (
    user_id VARCHAR NOT NULL,
    display_name VARCHAR,
    partner_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    password_hash VARCHAR,
    created_at TIMESTAMP NOT NULL,
    created_by VARCHAR NOT NULL,
    expires_on DATE,
    training_until DATE,
    disabled_at TIMESTAMP,
    disabled_reason VARCHAR,
    PRIMARY KEY (user_id)
);

CREATE TABLE gov.api_token (
    token_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    secret_hash VARCHAR NOT NULL,
    label VARCHAR,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP,
    PRIMARY KEY (token_id)
);

CREATE TABLE gov.audit_log (
    seq BIGINT NOT NULL,
    entry VARCHAR NOT NULL,
    prev_hash VARCHAR NOT NULL,
    row_hash VARCHAR NOT NULL
);

CREATE TABLE gov.release (
    release_id BIGINT NOT NULL,
    released_at TIMESTAMP NOT NULL,
    user_id VARCHAR NOT NULL,
    partner_id VARCHAR NOT NULL,
    purpose VARCHAR NOT NULL,
    definition VARCHAR NOT NULL,
    agreements VARCHAR NOT NULL,
    providers VARCHAR NOT NULL,
    mode VARCHAR NOT NULL,
    cells INTEGER NOT NULL,
    suppressed INTEGER NOT NULL,
    epsilon DOUBLE,
    PRIMARY KEY (release_id)
);

CREATE TABLE gov.release_cell (
    release_id BIGINT NOT NULL,
    cell INTEGER NOT NULL,
    label VARCHAR NOT NULL,
    value BIGINT NOT NULL,
    published BOOLEAN NOT NULL,
    threshold INTEGER NOT NULL,
    PRIMARY KEY (release_id, cell)
);

CREATE TABLE gov.release_member (
    release_id BIGINT NOT NULL,
    cell INTEGER NOT NULL,
    unit VARCHAR NOT NULL,
    record VARCHAR NOT NULL
);

CREATE TABLE gov.dp_spend (
    agreement VARCHAR NOT NULL,
    release_id BIGINT NOT NULL,
    epsilon DOUBLE NOT NULL,
    delta DOUBLE NOT NULL,
    spent_at TIMESTAMP NOT NULL
);

CREATE TABLE gov.purge (
    purge_id BIGINT NOT NULL,
    provider_partner_id VARCHAR NOT NULL,
    agreement VARCHAR NOT NULL,
    due_on DATE NOT NULL,
    purged_at TIMESTAMP NOT NULL,
    rows_destroyed BIGINT NOT NULL,
    certificate VARCHAR NOT NULL,
    PRIMARY KEY (purge_id)
);

CREATE TABLE analytic.consent (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    consent_scope VARCHAR NOT NULL,
    consent_status VARCHAR NOT NULL,
    decision_date DATE NOT NULL,
    school_year SMALLINT,
    expiration_date DATE,
    submission_id BIGINT NOT NULL
);
