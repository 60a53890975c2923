-- Migration 1: canonical model: partners, descriptors, identity, analytic facts
-- Frozen: the DDL exactly as this step ran when it shipped (commit 7768514).
-- Never edit it: change the schema by appending a migration.

CREATE SCHEMA IF NOT EXISTS ops;

CREATE SCHEMA IF NOT EXISTS ref;

CREATE SCHEMA IF NOT EXISTS identity;

CREATE SCHEMA IF NOT EXISTS analytic;

CREATE TABLE ops.meta (
    key VARCHAR NOT NULL,
    value VARCHAR,
    PRIMARY KEY (key)
);

CREATE TABLE ops.schema_migration (
    version INTEGER NOT NULL,
    description VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL,
    backbone_version VARCHAR NOT NULL,
    PRIMARY KEY (version)
);

CREATE TABLE ops.submission (
    submission_id BIGINT NOT NULL,
    partner_id VARCHAR NOT NULL,
    feed VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    raw_path VARCHAR NOT NULL,
    received_at TIMESTAMP NOT NULL,
    status VARCHAR NOT NULL,
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_quarantined BIGINT,
    note VARCHAR,
    PRIMARY KEY (submission_id)
);

CREATE TABLE ref.partner (
    partner_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    ed_org_id BIGINT,
    parent_partner_id VARCHAR,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (partner_id)
);

CREATE TABLE ref.school (
    school_id VARCHAR NOT NULL,
    partner_id VARCHAR NOT NULL,
    local_school_code VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    school_level VARCHAR,
    lowest_grade_level VARCHAR,
    highest_grade_level VARCHAR,
    ed_org_id BIGINT,
    PRIMARY KEY (school_id)
);

CREATE TABLE ref.program (
    program_id VARCHAR NOT NULL,
    partner_id VARCHAR NOT NULL,
    program_name VARCHAR NOT NULL,
    program_type VARCHAR,
    PRIMARY KEY (program_id)
);

CREATE TABLE ref.initiative (
    initiative_id VARCHAR NOT NULL,
    funder_partner_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    begin_date DATE,
    end_date DATE,
    PRIMARY KEY (initiative_id)
);

CREATE TABLE ref.initiative_program (
    initiative_id VARCHAR NOT NULL,
    program_id VARCHAR NOT NULL,
    PRIMARY KEY (initiative_id, program_id)
);

CREATE TABLE ref.postsecondary_institution (
    institution_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    level VARCHAR,
    control VARCHAR,
    state VARCHAR,
    PRIMARY KEY (institution_id)
);

CREATE TABLE ref.descriptor (
    descriptor_name VARCHAR NOT NULL,
    code_value VARCHAR NOT NULL,
    namespace VARCHAR NOT NULL,
    short_description VARCHAR,
    ordinal SMALLINT,
    PRIMARY KEY (descriptor_name, code_value)
);

CREATE TABLE ref.descriptor_map (
    partner_id VARCHAR NOT NULL,
    descriptor_name VARCHAR NOT NULL,
    local_code_value VARCHAR NOT NULL,
    code_value VARCHAR NOT NULL,
    PRIMARY KEY (partner_id, descriptor_name, local_code_value)
);

CREATE TABLE identity.partner_record (
    partner_id VARCHAR NOT NULL,
    local_id VARCHAR NOT NULL,
    identification_system VARCHAR,
    first_name VARCHAR,
    middle_name VARCHAR,
    last_surname VARCHAR,
    generation_code_suffix VARCHAR,
    birth_date DATE,
    birth_sex VARCHAR,
    address VARCHAR,
    postal_code VARCHAR,
    state_student_id VARCHAR,
    school_id VARCHAR,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (partner_id, local_id)
);

CREATE TABLE identity.person (
    person_id BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (person_id)
);

CREATE TABLE identity.record_person (
    partner_id VARCHAR NOT NULL,
    local_id VARCHAR NOT NULL,
    person_id BIGINT NOT NULL,
    method VARCHAR NOT NULL,
    linked_at TIMESTAMP NOT NULL,
    PRIMARY KEY (partner_id, local_id)
);

CREATE TABLE analytic.demographics (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    as_of_date DATE NOT NULL,
    sex VARCHAR,
    hispanic_latino_ethnicity BOOLEAN,
    race VARCHAR,
    economic_disadvantaged BOOLEAN,
    english_learner BOOLEAN,
    disability BOOLEAN,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, as_of_date)
);

CREATE TABLE analytic.enrollment (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_id VARCHAR NOT NULL,
    entry_date DATE NOT NULL,
    entry_grade_level VARCHAR NOT NULL,
    school_year SMALLINT NOT NULL,
    entry_type VARCHAR,
    exit_withdraw_date DATE,
    exit_withdraw_type VARCHAR,
    class_of_school_year SMALLINT,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, school_id, entry_date)
);

CREATE TABLE analytic.attendance_event (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_id VARCHAR NOT NULL,
    school_year SMALLINT NOT NULL,
    event_date DATE NOT NULL,
    attendance_event_category VARCHAR NOT NULL,
    event_duration DECIMAL(3,2),
    attendance_event_reason VARCHAR,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, school_id, event_date, attendance_event_category)
);

CREATE TABLE analytic.attendance_period (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_id VARCHAR NOT NULL,
    school_year SMALLINT NOT NULL,
    session_name VARCHAR NOT NULL,
    period_begin_date DATE,
    period_end_date DATE,
    days_enrolled DECIMAL(5,1) NOT NULL,
    days_present DECIMAL(5,1) NOT NULL,
    days_absent_excused DECIMAL(5,1),
    days_absent_unexcused DECIMAL(5,1),
    days_tardy DECIMAL(5,1),
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, school_id, school_year, session_name)
);

CREATE TABLE analytic.discipline_incident (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_id VARCHAR NOT NULL,
    incident_identifier VARCHAR NOT NULL,
    incident_date DATE NOT NULL,
    behavior VARCHAR NOT NULL,
    participation_code VARCHAR,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, school_id, incident_identifier, behavior)
);

CREATE TABLE analytic.discipline_action (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    discipline_action_identifier VARCHAR NOT NULL,
    discipline_date DATE NOT NULL,
    discipline VARCHAR NOT NULL,
    discipline_action_length DECIMAL(5,1),
    responsibility_school_id VARCHAR,
    incident_identifier VARCHAR,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, discipline_action_identifier, discipline_date)
);

CREATE TABLE analytic.course_transcript (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_id VARCHAR NOT NULL,
    school_year SMALLINT NOT NULL,
    term VARCHAR NOT NULL,
    course_code VARCHAR NOT NULL,
    course_title VARCHAR,
    academic_subject VARCHAR,
    course_attempt_result VARCHAR,
    attempted_credits DECIMAL(4,2),
    earned_credits DECIMAL(4,2),
    final_letter_grade_earned VARCHAR,
    final_numeric_grade_earned DECIMAL(5,2),
    when_taken_grade_level VARCHAR,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, school_id, school_year, term, course_code)
);

CREATE TABLE analytic.student_academic_record (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_id VARCHAR NOT NULL,
    school_year SMALLINT NOT NULL,
    term VARCHAR NOT NULL,
    session_attempted_credits DECIMAL(5,2),
    session_earned_credits DECIMAL(5,2),
    cumulative_earned_credits DECIMAL(5,2),
    session_gpa DECIMAL(4,2),
    cumulative_gpa DECIMAL(4,2),
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, school_id, school_year, term)
);

CREATE TABLE analytic.student_assessment (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    assessment_identifier VARCHAR NOT NULL,
    academic_subject VARCHAR,
    administration_date DATE NOT NULL,
    school_year SMALLINT NOT NULL,
    when_assessed_grade_level VARCHAR,
    scale_score DOUBLE,
    performance_level VARCHAR,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, assessment_identifier, administration_date)
);

CREATE TABLE analytic.program_participation (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    program_id VARCHAR NOT NULL,
    begin_date DATE NOT NULL,
    end_date DATE,
    reason_exited VARCHAR,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, program_id, begin_date)
);

CREATE TABLE analytic.program_attendance (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    program_id VARCHAR NOT NULL,
    event_date DATE NOT NULL,
    attendance_event_category VARCHAR NOT NULL,
    hours DECIMAL(4,2),
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, program_id, event_date)
);

CREATE TABLE analytic.graduation (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_id VARCHAR NOT NULL,
    graduation_date DATE NOT NULL,
    diploma_type VARCHAR,
    class_of_school_year SMALLINT,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, school_id)
);

CREATE TABLE analytic.postsecondary_enrollment (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    institution_id VARCHAR NOT NULL,
    term_name VARCHAR NOT NULL,
    term_begin_date DATE NOT NULL,
    term_end_date DATE,
    enrollment_status VARCHAR,
    credits_attempted DECIMAL(5,2),
    credits_earned DECIMAL(5,2),
    term_gpa DECIMAL(4,2),
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, institution_id, term_begin_date)
);

CREATE TABLE analytic.postsecondary_event (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    event_date DATE NOT NULL,
    postsecondary_event_category VARCHAR NOT NULL,
    institution_id VARCHAR,
    degree_type VARCHAR,
    submission_id BIGINT NOT NULL,
    PRIMARY KEY (provider_partner_id, student_local_id, postsecondary_event_category, event_date)
);
