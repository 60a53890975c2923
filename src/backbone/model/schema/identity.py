"""``identity``: what partners sent to identify a person, the linked persons, and
identity resolution's runs, edges and decisions."""

from __future__ import annotations

from backbone.model.schema.core import Column, Table, _c

__all__ = ["IDENTITY_TABLES", "LINKAGE_TABLES"]

IDENTITY_TABLES = (
    Table(
        "identity",
        "partner_record",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("local_id", "VARCHAR", required=True),
            _c(
                "identification_system",
                "VARCHAR",
                descriptor="StudentIdentificationSystemDescriptor",
            ),
            _c("first_name", "VARCHAR"),
            _c("middle_name", "VARCHAR"),
            _c("last_surname", "VARCHAR"),
            _c("generation_code_suffix", "VARCHAR"),
            _c("birth_date", "DATE"),
            _c("birth_sex", "VARCHAR", descriptor="SexDescriptor"),
            _c("address", "VARCHAR"),
            _c("postal_code", "VARCHAR"),
            _c("state_student_id", "VARCHAR"),
            _c("school_id", "VARCHAR", doc="school last seen with, if any"),
            _c("submission_id", "BIGINT", required=True),
            _c(
                "school_name",
                "VARCHAR",
                doc="the school the person attends (or attended), as the partner names it",
            ),
            _c(
                "birth_year",
                "SMALLINT",
                doc="for a partner that sends no full birth date (added by migration 11)",
            ),
            _c("birth_quarter", "SMALLINT", doc="1-4, with birth_year"),
        ),
        ("partner_id", "local_id"),
        doc="The identifying fields a partner sent for its local id (PII).",
        person_level=True,
    ),
    Table(
        "identity",
        "person",
        (
            _c("person_id", "BIGINT", required=True),
            _c("created_at", "TIMESTAMP", required=True),
            _c("retired_at", "TIMESTAMP", doc="when a merge or a purge retired the id"),
            _c("merged_into", "BIGINT", doc="the person a retired id was merged into"),
        ),
        ("person_id",),
        doc="A linked person: every record of one student, across partners.",
    ),
    Table(
        "identity",
        "record_person",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("local_id", "VARCHAR", required=True),
            _c("person_id", "BIGINT", required=True),
            _c(
                "method", "VARCHAR", required=True, doc="deterministic / model / review"
            ),
            _c("linked_at", "TIMESTAMP", required=True),
        ),
        ("partner_id", "local_id"),
        doc="Which person each partner record belongs to.",
        person_level=True,
    ),
)


def _pair() -> tuple[Column, ...]:
    """A pair of partner records, ordered so (partner_id_l, local_id_l) sorts first."""
    return (
        _c("partner_id_l", "VARCHAR", required=True),
        _c("local_id_l", "VARCHAR", required=True),
        _c("partner_id_r", "VARCHAR", required=True),
        _c("local_id_r", "VARCHAR", required=True),
    )


# Added by migration 5: identity resolution.
LINKAGE_TABLES = (
    Table(
        "identity",
        "link_run",
        (
            _c("run_id", "BIGINT", required=True),
            _c("started_at", "TIMESTAMP", required=True),
            _c("finished_at", "TIMESTAMP", required=True),
            _c("records", "BIGINT", required=True),
            _c("pairs_scored", "BIGINT", required=True),
            _c("auto_links", "BIGINT", required=True),
            _c("deterministic_links", "BIGINT", required=True),
            _c("encoded_links", "BIGINT", required=True),
            _c("review_pairs", "BIGINT", required=True),
            _c("refused_by_constraints", "BIGINT", required=True),
            _c("persons", "BIGINT", required=True),
            _c("new_persons", "BIGINT", required=True),
            _c("merges", "BIGINT", required=True),
            _c("splits", "BIGINT", required=True),
            _c("auto_link_probability", "DOUBLE", required=True),
            _c("review_probability", "DOUBLE", required=True),
            _c("model_json", "VARCHAR", required=True, doc="the trained Splink model"),
        ),
        ("run_id",),
        doc="Each run of `backbone link`, with the model it trained.",
    ),
    Table(
        "identity",
        "link_edge",
        (
            *_pair(),
            _c("run_id", "BIGINT", required=True),
            _c(
                "method",
                "VARCHAR",
                required=True,
                doc="deterministic / model / encoded / review",
            ),
            _c("match_weight", "DOUBLE"),
            _c("match_probability", "DOUBLE", required=True),
            _c("decision", "VARCHAR", required=True, doc="link / review / refused"),
            _c("reason", "VARCHAR", doc="why a pair was refused"),
        ),
        ("partner_id_l", "local_id_l", "partner_id_r", "local_id_r"),
        doc="The evidence of the latest run: every pair linked, sent to review or refused.",
        person_level=True,
    ),
    Table(
        "identity",
        "review_decision",
        (
            *_pair(),
            _c("decision", "VARCHAR", required=True, doc="same / different"),
            _c("decided_by", "VARCHAR", required=True),
            _c("decided_at", "TIMESTAMP", required=True),
            _c("note", "VARCHAR"),
        ),
        ("partner_id_l", "local_id_l", "partner_id_r", "local_id_r"),
        doc="Clerical review: these override the model on every later run.",
        person_level=True,
    ),
    Table(
        "identity",
        "person_event",
        (
            _c("run_id", "BIGINT", required=True),
            _c("event", "VARCHAR", required=True, doc="merge / split / retire"),
            _c("person_id", "BIGINT", required=True),
            _c("other_person_id", "BIGINT"),
            _c("records", "BIGINT", required=True, doc="records that moved"),
            _c("evidence", "VARCHAR", required=True, doc="JSON: the pairs behind it"),
            _c("happened_at", "TIMESTAMP", required=True),
        ),
        (),
        doc="How persons changed between runs: merged, split or retired, with evidence.",
    ),
    Table(
        "identity",
        "encoding",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("local_id", "VARCHAR", required=True),
            _c("clk", "VARCHAR", required=True, doc="1024-bit Bloom filter, base64"),
            _c("linkage_project", "VARCHAR", required=True),
            _c("received_at", "TIMESTAMP", required=True),
        ),
        ("partner_id", "local_id"),
        doc="Privacy-preserving encodings a partner made with a secret we never hold (PII).",
        person_level=True,
    ),
)
