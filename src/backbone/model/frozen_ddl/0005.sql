-- Migration 5: identity resolution: link runs, evidence, clerical review, person events, privacy-preserving encodings; the school a partner names
-- Frozen: the DDL exactly as this step ran when it shipped (commit ab757e4).
-- Never edit it: change the schema by appending a migration.

ALTER TABLE identity.partner_record ADD COLUMN IF NOT EXISTS school_name VARCHAR;

ALTER TABLE identity.person ADD COLUMN IF NOT EXISTS retired_at TIMESTAMP;

ALTER TABLE identity.person ADD COLUMN IF NOT EXISTS merged_into BIGINT;

CREATE TABLE identity.link_run (
    run_id BIGINT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    records BIGINT NOT NULL,
    pairs_scored BIGINT NOT NULL,
    auto_links BIGINT NOT NULL,
    deterministic_links BIGINT NOT NULL,
    encoded_links BIGINT NOT NULL,
    review_pairs BIGINT NOT NULL,
    refused_by_constraints BIGINT NOT NULL,
    persons BIGINT NOT NULL,
    new_persons BIGINT NOT NULL,
    merges BIGINT NOT NULL,
    splits BIGINT NOT NULL,
    auto_link_probability DOUBLE NOT NULL,
    review_probability DOUBLE NOT NULL,
    model_json VARCHAR NOT NULL,
    PRIMARY KEY (run_id)
);

CREATE TABLE identity.link_edge (
    partner_id_l VARCHAR NOT NULL,
    local_id_l VARCHAR NOT NULL,
    partner_id_r VARCHAR NOT NULL,
    local_id_r VARCHAR NOT NULL,
    run_id BIGINT NOT NULL,
    method VARCHAR NOT NULL,
    match_weight DOUBLE,
    match_probability DOUBLE NOT NULL,
    decision VARCHAR NOT NULL,
    reason VARCHAR
);

CREATE TABLE identity.review_decision (
    partner_id_l VARCHAR NOT NULL,
    local_id_l VARCHAR NOT NULL,
    partner_id_r VARCHAR NOT NULL,
    local_id_r VARCHAR NOT NULL,
    decision VARCHAR NOT NULL,
    decided_by VARCHAR NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    note VARCHAR,
    PRIMARY KEY (partner_id_l, local_id_l, partner_id_r, local_id_r)
);

CREATE TABLE identity.person_event (
    run_id BIGINT NOT NULL,
    event VARCHAR NOT NULL,
    person_id BIGINT NOT NULL,
    other_person_id BIGINT,
    records BIGINT NOT NULL,
    evidence VARCHAR NOT NULL,
    happened_at TIMESTAMP NOT NULL
);

CREATE TABLE identity.encoding (
    partner_id VARCHAR NOT NULL,
    local_id VARCHAR NOT NULL,
    clk VARCHAR NOT NULL,
    linkage_project VARCHAR NOT NULL,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (partner_id, local_id)
);
