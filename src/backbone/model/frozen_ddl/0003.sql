-- Migration 3: partner contacts, agreement versions, commitments, feeds, data-use requests
-- Frozen: the DDL exactly as this step ran when it shipped (commit cfe5dc6).
-- Never edit it: change the schema by appending a migration.

CREATE SCHEMA IF NOT EXISTS gov;

CREATE TABLE ref.partner_contact (
    partner_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    role VARCHAR,
    email VARCHAR NOT NULL,
    PRIMARY KEY (partner_id, email)
);

CREATE TABLE gov.agreement_version (
    agreement_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    provider_partner_id VARCHAR NOT NULL,
    effective_from DATE NOT NULL,
    summary VARCHAR NOT NULL,
    change_class VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    in_force_from DATE,
    recorded_at TIMESTAMP NOT NULL,
    sha256 VARCHAR NOT NULL,
    document VARCHAR NOT NULL,
    PRIMARY KEY (agreement_id, version)
);

CREATE TABLE gov.agreement_approval (
    agreement_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    partner_id VARCHAR NOT NULL,
    approved_by VARCHAR NOT NULL,
    approved_on DATE NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (agreement_id, version, partner_id)
);

CREATE TABLE gov.commitment (
    commitment_id INTEGER NOT NULL,
    title VARCHAR NOT NULL,
    owner_partner_id VARCHAR NOT NULL,
    owner_person VARCHAR,
    counterpart_partner_id VARCHAR,
    due_date DATE NOT NULL,
    status VARCHAR NOT NULL,
    made_on DATE NOT NULL,
    context VARCHAR,
    PRIMARY KEY (commitment_id)
);

CREATE TABLE gov.commitment_update (
    commitment_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    updated_on DATE NOT NULL,
    status VARCHAR NOT NULL,
    due_date DATE NOT NULL,
    note VARCHAR,
    by_person VARCHAR,
    PRIMARY KEY (commitment_id, seq)
);

CREATE TABLE gov.feed (
    partner_id VARCHAR NOT NULL,
    feed_id VARCHAR NOT NULL,
    entities VARCHAR[] NOT NULL,
    cadence VARCHAR NOT NULL,
    agreement_id VARCHAR NOT NULL,
    description VARCHAR,
    since DATE NOT NULL,
    PRIMARY KEY (partner_id, feed_id)
);

CREATE TABLE gov.data_request (
    request_id VARCHAR NOT NULL,
    requester_partner_id VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    filed_on DATE NOT NULL,
    status VARCHAR NOT NULL,
    document VARCHAR NOT NULL,
    draft_agreement_id VARCHAR,
    PRIMARY KEY (request_id)
);

CREATE TABLE gov.request_review (
    request_id VARCHAR NOT NULL,
    provider_partner_id VARCHAR NOT NULL,
    reviewer VARCHAR NOT NULL,
    decision VARCHAR NOT NULL,
    fit SMALLINT NOT NULL,
    protections SMALLINT NOT NULL,
    minimum_necessary SMALLINT NOT NULL,
    conditions VARCHAR,
    comments VARCHAR,
    reviewed_on DATE NOT NULL,
    PRIMARY KEY (request_id, provider_partner_id)
);
