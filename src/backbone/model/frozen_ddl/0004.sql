-- Migration 4: ingestion: quarantine, per-entity counts, replacements, raw-file decisions; analytic tables keep their natural keys by validation, not an index
-- Frozen: the DDL exactly as this step ran when it shipped (commit 0a2b982).
-- Never edit it: change the schema by appending a migration.

CREATE TABLE ops.submission_target (
    submission_id BIGINT NOT NULL,
    entity VARCHAR NOT NULL,
    rows_in BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    rows_replaced BIGINT NOT NULL,
    periods SMALLINT[],
    PRIMARY KEY (submission_id, entity)
);

CREATE TABLE ops.quarantine (
    submission_id BIGINT NOT NULL,
    entity VARCHAR NOT NULL,
    source_row BIGINT NOT NULL,
    rules VARCHAR[] NOT NULL,
    messages VARCHAR[] NOT NULL,
    record JSON NOT NULL,
    PRIMARY KEY (submission_id, entity, source_row)
);

CREATE TABLE ops.replacement (
    submission_id BIGINT NOT NULL,
    entity VARCHAR NOT NULL,
    replaced_submission_id BIGINT NOT NULL,
    rows BIGINT NOT NULL,
    PRIMARY KEY (submission_id, entity, replaced_submission_id)
);

CREATE TABLE ops.raw_decision (
    submission_id BIGINT NOT NULL,
    undeclared_columns VARCHAR[] NOT NULL,
    decision VARCHAR,
    reason VARCHAR,
    decided_by VARCHAR,
    decided_at TIMESTAMP,
    PRIMARY KEY (submission_id)
);

ALTER TABLE gov.feed ADD COLUMN mode VARCHAR DEFAULT 'replace-period';

CREATE TABLE analytic.demographics__v4 AS SELECT * FROM analytic.demographics;

DROP TABLE analytic.demographics;

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
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.demographics SELECT * FROM analytic.demographics__v4;

DROP TABLE analytic.demographics__v4;

CREATE TABLE analytic.enrollment__v4 AS SELECT * FROM analytic.enrollment;

DROP TABLE analytic.enrollment;

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
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.enrollment SELECT * FROM analytic.enrollment__v4;

DROP TABLE analytic.enrollment__v4;

CREATE TABLE analytic.attendance_event__v4 AS SELECT * FROM analytic.attendance_event;

DROP TABLE analytic.attendance_event;

CREATE TABLE analytic.attendance_event (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_id VARCHAR NOT NULL,
    school_year SMALLINT NOT NULL,
    event_date DATE NOT NULL,
    attendance_event_category VARCHAR NOT NULL,
    event_duration DECIMAL(3,2),
    attendance_event_reason VARCHAR,
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.attendance_event SELECT * FROM analytic.attendance_event__v4;

DROP TABLE analytic.attendance_event__v4;

CREATE TABLE analytic.attendance_period__v4 AS SELECT * FROM analytic.attendance_period;

DROP TABLE analytic.attendance_period;

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
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.attendance_period SELECT * FROM analytic.attendance_period__v4;

DROP TABLE analytic.attendance_period__v4;

CREATE TABLE analytic.discipline_incident__v4 AS SELECT * FROM analytic.discipline_incident;

DROP TABLE analytic.discipline_incident;

CREATE TABLE analytic.discipline_incident (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_id VARCHAR NOT NULL,
    incident_identifier VARCHAR NOT NULL,
    incident_date DATE NOT NULL,
    behavior VARCHAR NOT NULL,
    participation_code VARCHAR,
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.discipline_incident SELECT * FROM analytic.discipline_incident__v4;

DROP TABLE analytic.discipline_incident__v4;

CREATE TABLE analytic.discipline_action__v4 AS SELECT * FROM analytic.discipline_action;

DROP TABLE analytic.discipline_action;

CREATE TABLE analytic.discipline_action (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    discipline_action_identifier VARCHAR NOT NULL,
    discipline_date DATE NOT NULL,
    discipline VARCHAR NOT NULL,
    discipline_action_length DECIMAL(5,1),
    responsibility_school_id VARCHAR,
    incident_identifier VARCHAR,
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.discipline_action SELECT * FROM analytic.discipline_action__v4;

DROP TABLE analytic.discipline_action__v4;

CREATE TABLE analytic.course_transcript__v4 AS SELECT * FROM analytic.course_transcript;

DROP TABLE analytic.course_transcript;

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
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.course_transcript SELECT * FROM analytic.course_transcript__v4;

DROP TABLE analytic.course_transcript__v4;

CREATE TABLE analytic.student_academic_record__v4 AS SELECT * FROM analytic.student_academic_record;

DROP TABLE analytic.student_academic_record;

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
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.student_academic_record SELECT * FROM analytic.student_academic_record__v4;

DROP TABLE analytic.student_academic_record__v4;

CREATE TABLE analytic.student_assessment__v4 AS SELECT * FROM analytic.student_assessment;

DROP TABLE analytic.student_assessment;

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
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.student_assessment SELECT * FROM analytic.student_assessment__v4;

DROP TABLE analytic.student_assessment__v4;

CREATE TABLE analytic.program_participation__v4 AS SELECT * FROM analytic.program_participation;

DROP TABLE analytic.program_participation;

CREATE TABLE analytic.program_participation (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    program_id VARCHAR NOT NULL,
    begin_date DATE NOT NULL,
    end_date DATE,
    reason_exited VARCHAR,
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.program_participation SELECT * FROM analytic.program_participation__v4;

DROP TABLE analytic.program_participation__v4;

CREATE TABLE analytic.program_attendance__v4 AS SELECT * FROM analytic.program_attendance;

DROP TABLE analytic.program_attendance;

CREATE TABLE analytic.program_attendance (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    program_id VARCHAR NOT NULL,
    event_date DATE NOT NULL,
    attendance_event_category VARCHAR NOT NULL,
    hours DECIMAL(4,2),
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.program_attendance SELECT * FROM analytic.program_attendance__v4;

DROP TABLE analytic.program_attendance__v4;

CREATE TABLE analytic.graduation__v4 AS SELECT * FROM analytic.graduation;

DROP TABLE analytic.graduation;

CREATE TABLE analytic.graduation (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    school_id VARCHAR NOT NULL,
    graduation_date DATE NOT NULL,
    diploma_type VARCHAR,
    class_of_school_year SMALLINT,
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.graduation SELECT * FROM analytic.graduation__v4;

DROP TABLE analytic.graduation__v4;

CREATE TABLE analytic.postsecondary_enrollment__v4 AS SELECT * FROM analytic.postsecondary_enrollment;

DROP TABLE analytic.postsecondary_enrollment;

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
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.postsecondary_enrollment SELECT * FROM analytic.postsecondary_enrollment__v4;

DROP TABLE analytic.postsecondary_enrollment__v4;

CREATE TABLE analytic.postsecondary_event__v4 AS SELECT * FROM analytic.postsecondary_event;

DROP TABLE analytic.postsecondary_event;

CREATE TABLE analytic.postsecondary_event (
    provider_partner_id VARCHAR NOT NULL,
    student_local_id VARCHAR NOT NULL,
    event_date DATE NOT NULL,
    postsecondary_event_category VARCHAR NOT NULL,
    institution_id VARCHAR,
    degree_type VARCHAR,
    submission_id BIGINT NOT NULL
);

INSERT INTO analytic.postsecondary_event SELECT * FROM analytic.postsecondary_event__v4;

DROP TABLE analytic.postsecondary_event__v4;
