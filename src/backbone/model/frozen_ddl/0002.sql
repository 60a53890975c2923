-- Migration 2: school years and instructional calendars
-- Frozen: the DDL exactly as this step ran when it shipped (commit 7768514).
-- Never edit it: change the schema by appending a migration.

CREATE TABLE ref.school_year (
    school_year SMALLINT NOT NULL,
    description VARCHAR NOT NULL,
    begin_date DATE NOT NULL,
    end_date DATE NOT NULL,
    PRIMARY KEY (school_year)
);

CREATE TABLE ref.calendar_date (
    school_id VARCHAR NOT NULL,
    date DATE NOT NULL,
    school_year SMALLINT NOT NULL,
    is_instructional_day BOOLEAN NOT NULL,
    PRIMARY KEY (school_id, date)
);
