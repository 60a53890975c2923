-- Migration 7: early warning: indicator components per record and snapshot day, versioned indicator definitions, trained risk models
-- Frozen: the DDL exactly as this step ran when it shipped (commit 16a2827).
-- Never edit it: change the schema by appending a migration.

CREATE TABLE analytic.student_indicator (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_year SMALLINT NOT NULL,
    as_of_date DATE NOT NULL,
    definition_version INTEGER NOT NULL,
    school_id VARCHAR,
    grade_level VARCHAR,
    last_enrolled_date DATE,
    days_enrolled DOUBLE,
    days_absent DOUBLE,
    suspensions INTEGER,
    suspension_days DOUBLE,
    conduct_incidents INTEGER,
    state_offenses INTEGER,
    ela_mark_total DOUBLE,
    ela_marks INTEGER,
    math_mark_total DOUBLE,
    math_marks INTEGER,
    ela_math_fails INTEGER,
    core_course_fails INTEGER,
    course_fails INTEGER,
    terms_completed INTEGER,
    credits_earned DOUBLE,
    cumulative_credits DOUBLE,
    gpa DOUBLE,
    gpa_date DATE,
    sex VARCHAR,
    race VARCHAR,
    hispanic_latino_ethnicity BOOLEAN,
    economic_disadvantaged BOOLEAN,
    english_learner BOOLEAN,
    disability BOOLEAN,
    programs INTEGER,
    program_hours DOUBLE,
    submission_id BIGINT NOT NULL
);

CREATE TABLE gov.indicator_definition (
    version INTEGER NOT NULL,
    document VARCHAR NOT NULL,
    checksum VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    recorded_by VARCHAR NOT NULL,
    note VARCHAR,
    PRIMARY KEY (version)
);

CREATE TABLE gov.risk_model (
    model_id INTEGER NOT NULL,
    trained_at TIMESTAMP NOT NULL,
    trained_by VARCHAR NOT NULL,
    definition_version INTEGER NOT NULL,
    best VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    checksum VARCHAR NOT NULL,
    report VARCHAR NOT NULL,
    PRIMARY KEY (model_id)
);
