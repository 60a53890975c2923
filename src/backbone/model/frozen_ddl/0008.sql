-- Migration 8: funders' initiatives: description, target outcomes, minimum dosage
-- Frozen: the DDL exactly as this step ran when it shipped (commit 4d6a088).
-- Never edit it: change the schema by appending a migration.

ALTER TABLE ref.initiative ADD COLUMN IF NOT EXISTS description VARCHAR;

ALTER TABLE ref.initiative ADD COLUMN IF NOT EXISTS target_outcomes VARCHAR[];

ALTER TABLE ref.initiative ADD COLUMN IF NOT EXISTS min_sessions INTEGER;

ALTER TABLE ref.initiative ADD COLUMN IF NOT EXISTS min_hours DOUBLE;

ALTER TABLE ref.initiative ADD COLUMN IF NOT EXISTS definition VARCHAR;
