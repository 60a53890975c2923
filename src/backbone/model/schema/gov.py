"""``gov``: the partnership's governance records (agreements, commitments, feeds,
data requests), who may read and what was released and purged, and the
indicator definitions and risk models."""

from __future__ import annotations

from backbone.model.schema.core import Table, _c

__all__ = ["ACCESS_TABLES", "MODEL_TABLES", "RECORD_TABLES"]

# Added by migration 3 (with ref.CONTACT_TABLES): the partnership's governance
# records.
RECORD_TABLES = (
    Table(
        "gov",
        "agreement_version",
        (
            _c("agreement_id", "VARCHAR", required=True),
            _c("version", "INTEGER", required=True),
            _c("provider_partner_id", "VARCHAR", required=True),
            _c(
                "effective_from", "DATE", required=True, doc="when this version applies"
            ),
            _c("summary", "VARCHAR", required=True),
            _c(
                "change_class",
                "VARCHAR",
                required=True,
                doc="initial / widening / narrowing / neutral",
            ),
            _c(
                "status", "VARCHAR", required=True, doc="pending / approved / withdrawn"
            ),
            _c(
                "in_force_from",
                "DATE",
                doc="set once approved: effective date or last approval",
            ),
            _c("recorded_at", "TIMESTAMP", required=True),
            _c("sha256", "VARCHAR", required=True),
            _c("document", "VARCHAR", required=True, doc="the version's YAML text"),
        ),
        ("agreement_id", "version"),
        doc="Every version of every agreement; none is ever deleted.",
    ),
    Table(
        "gov",
        "agreement_approval",
        (
            _c("agreement_id", "VARCHAR", required=True),
            _c("version", "INTEGER", required=True),
            _c("partner_id", "VARCHAR", required=True),
            _c("approved_by", "VARCHAR", required=True),
            _c("approved_on", "DATE", required=True),
            _c("recorded_at", "TIMESTAMP", required=True),
        ),
        ("agreement_id", "version", "partner_id"),
    ),
    Table(
        "gov",
        "commitment",
        (
            _c("commitment_id", "INTEGER", required=True),
            _c("title", "VARCHAR", required=True),
            _c("owner_partner_id", "VARCHAR", required=True),
            _c("owner_person", "VARCHAR"),
            _c("counterpart_partner_id", "VARCHAR"),
            _c("due_date", "DATE", required=True),
            _c(
                "status",
                "VARCHAR",
                required=True,
                doc="open / in_progress / done / dropped",
            ),
            _c("made_on", "DATE", required=True),
            _c("context", "VARCHAR", doc="where it was promised, e.g. a meeting"),
        ),
        ("commitment_id",),
        doc="Promises partners make to each other.",
    ),
    Table(
        "gov",
        "commitment_update",
        (
            _c("commitment_id", "INTEGER", required=True),
            _c("seq", "INTEGER", required=True),
            _c("updated_on", "DATE", required=True),
            _c("status", "VARCHAR", required=True),
            _c("due_date", "DATE", required=True),
            _c("note", "VARCHAR"),
            _c("by_person", "VARCHAR"),
        ),
        ("commitment_id", "seq"),
        doc="Dated history of every commitment.",
    ),
    Table(
        "gov",
        "feed",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("feed_id", "VARCHAR", required=True),
            _c("entities", "VARCHAR[]", required=True),
            _c("cadence", "VARCHAR", required=True, doc="monthly / term / yearly"),
            _c("agreement_id", "VARCHAR", required=True),
            _c("description", "VARCHAR"),
            _c("since", "DATE", required=True, doc="first period expected"),
            _c(
                "mode",
                "VARCHAR",
                default="'replace-period'",
                doc="replace-period / append (migration 4)",
            ),
        ),
        ("partner_id", "feed_id"),
        doc="The datasets each partner has agreed to send, and how often.",
    ),
    Table(
        "gov",
        "data_request",
        (
            _c("request_id", "VARCHAR", required=True),
            _c("requester_partner_id", "VARCHAR", required=True),
            _c("title", "VARCHAR", required=True),
            _c("filed_on", "DATE", required=True),
            _c(
                "status",
                "VARCHAR",
                required=True,
                doc="in_review / approved / declined",
            ),
            _c("document", "VARCHAR", required=True, doc="the request's YAML"),
            _c("draft_agreement_id", "VARCHAR"),
        ),
        ("request_id",),
        doc="Data-use requests: how a partnership grows.",
    ),
    Table(
        "gov",
        "request_review",
        (
            _c("request_id", "VARCHAR", required=True),
            _c("provider_partner_id", "VARCHAR", required=True),
            _c("reviewer", "VARCHAR", required=True),
            _c("decision", "VARCHAR", required=True),
            _c("fit", "SMALLINT", required=True, doc="rubric 1-4: fit with the goals"),
            _c("protections", "SMALLINT", required=True, doc="rubric 1-4"),
            _c("minimum_necessary", "SMALLINT", required=True, doc="rubric 1-4"),
            _c("conditions", "VARCHAR"),
            _c("comments", "VARCHAR"),
            _c("reviewed_on", "DATE", required=True),
        ),
        ("request_id", "provider_partner_id"),
    ),
)

# Added by migration 6 (with analytic.CONSENT_TABLES): who may read, what they
# read, what was released and purged.
ACCESS_TABLES = (
    Table(
        "gov",
        "principal",
        (
            _c("user_id", "VARCHAR", required=True),
            _c("display_name", "VARCHAR"),
            _c("partner_id", "VARCHAR", required=True),
            _c("role", "VARCHAR", required=True),
            _c(
                "password_hash", "VARCHAR", doc="argon2id; null until a password is set"
            ),
            _c("created_at", "TIMESTAMP", required=True),
            _c("created_by", "VARCHAR", required=True),
            _c("expires_on", "DATE", doc="no access after this day"),
            _c("training_until", "DATE", doc="confidentiality training valid until"),
            _c("disabled_at", "TIMESTAMP"),
            _c("disabled_reason", "VARCHAR"),
            _c(
                "totp_secret",
                "VARCHAR",
                doc="base32 secret of the user's second factor (TOTP, RFC 6238), "
                "once set up (migration 12)",
            ),
        ),
        ("user_id",),
        doc="Users: each belongs to one partner and has one role.",
    ),
    Table(
        "gov",
        "api_token",
        (
            _c(
                "token_id", "VARCHAR", required=True, doc="the public part of the token"
            ),
            _c("user_id", "VARCHAR", required=True),
            _c(
                "secret_hash",
                "VARCHAR",
                required=True,
                doc="SHA-256 of the secret part",
            ),
            _c("label", "VARCHAR"),
            _c("created_at", "TIMESTAMP", required=True),
            _c("expires_at", "TIMESTAMP"),
            _c("revoked_at", "TIMESTAMP"),
            _c("issued_by", "VARCHAR", doc="the user (or (setup)) who issued it"),
            _c(
                "after_second_factor",
                "BOOLEAN",
                doc="issued by its user after signing in with a second factor",
            ),
        ),
        ("token_id",),
        doc="API tokens; only a hash of the secret is kept.",
    ),
    # added by migration 14
    Table(
        "gov",
        "sign_in_failure",
        (
            _c(
                "subject",
                "VARCHAR",
                required=True,
                doc="password:<user>, code:<user> or source:<where from>",
            ),
            _c("failures", "INTEGER", required=True, doc="recent failures in a row"),
            _c("last_failed_at", "TIMESTAMP", required=True),
        ),
        ("subject",),
        doc="The sign-in throttle every door shares: failures not yet forgotten.",
    ),
    # added by migration 15
    Table(
        "gov",
        "held_confirmation",
        (
            _c("partner_id", "VARCHAR", required=True),
            _c("local_id", "VARCHAR", required=True, doc="the partner's record"),
            _c(
                "person_id",
                "BIGINT",
                required=True,
                doc="the person it was linked to: the confirmation holds only while "
                "the record stays linked to them",
            ),
            _c("confirmed_by", "VARCHAR", required=True, doc="the steward admin"),
            _c("confirmed_at", "TIMESTAMP", required=True),
            _c("reason", "VARCHAR", required=True, doc="what showed it"),
        ),
        ("partner_id", "local_id"),
        doc="Records a steward admin confirmed their partner serves the person of: "
        "they open others' facts as the partner's own facts would.",
    ),
    # added by migration 16
    Table(
        "gov",
        "second_factor_step",
        (
            _c("user_id", "VARCHAR", required=True),
            _c(
                "last_step",
                "BIGINT",
                required=True,
                doc="the 30-second step of the last code taken (Unix time / 30)",
            ),
        ),
        ("user_id",),
        doc="A second-factor code is taken once: a code seen over a shoulder or "
        "replayed from a log is refused.",
    ),
    Table(
        "gov",
        "audit_log",
        (
            _c("seq", "BIGINT", required=True),
            _c("entry", "VARCHAR", required=True, doc="canonical JSON of the event"),
            _c("prev_hash", "VARCHAR", required=True),
            _c("row_hash", "VARCHAR", required=True, doc="SHA-256(prev_hash || entry)"),
        ),
        (),
        doc="Append-only, hash-chained record of every read, export, upload, login, "
        "decision and purge.",
    ),
    Table(
        "gov",
        "release",
        (
            _c("release_id", "BIGINT", required=True),
            _c("released_at", "TIMESTAMP", required=True),
            _c("user_id", "VARCHAR", required=True),
            _c("partner_id", "VARCHAR", required=True),
            _c("purpose", "VARCHAR", required=True),
            _c("definition", "VARCHAR", required=True, doc="JSON: the table asked for"),
            _c("agreements", "VARCHAR", required=True, doc="id@version relied on"),
            _c("providers", "VARCHAR", required=True, doc="JSON: whose data is in it"),
            _c("mode", "VARCHAR", required=True, doc="suppression / dp"),
            _c("cells", "INTEGER", required=True),
            _c("suppressed", "INTEGER", required=True),
            _c("epsilon", "DOUBLE"),
        ),
        ("release_id",),
        doc="The release ledger: every aggregate table that left the warehouse.",
    ),
    Table(
        "gov",
        "release_cell",
        (
            _c("release_id", "BIGINT", required=True),
            _c("cell", "INTEGER", required=True),
            _c(
                "label",
                "VARCHAR",
                required=True,
                doc="JSON: the cell's dimension values",
            ),
            _c("value", "BIGINT", required=True, doc="the true count"),
            _c("published", "BOOLEAN", required=True),
            _c("threshold", "INTEGER", required=True),
        ),
        ("release_id", "cell"),
        doc="Every cell of every release, published or suppressed.",
    ),
    Table(
        "gov",
        "release_member",
        (
            _c("release_id", "BIGINT", required=True),
            _c("cell", "INTEGER", required=True),
            _c(
                "unit",
                "VARCHAR",
                required=True,
                doc="keyed hash of the person counted, as linked at release time",
            ),
            _c("record", "VARCHAR", required=True, doc="keyed hash of the record"),
        ),
        (),
        doc="Who each released cell counted (keyed hashes), so that later releases "
        "are audited together with earlier ones.",
    ),
    Table(
        "gov",
        "dp_spend",
        (
            _c("agreement", "VARCHAR", required=True, doc="agreement id"),
            _c("release_id", "BIGINT", required=True),
            _c("epsilon", "DOUBLE", required=True),
            _c("delta", "DOUBLE", required=True),
            _c("spent_at", "TIMESTAMP", required=True),
        ),
        (),
        doc="Differential-privacy budget spent under each agreement.",
    ),
    Table(
        "gov",
        "purge",
        (
            _c("purge_id", "BIGINT", required=True),
            _c("provider_partner_id", "VARCHAR", required=True),
            _c("agreement", "VARCHAR", required=True, doc="id@version that ended"),
            _c("due_on", "DATE", required=True),
            _c("purged_at", "TIMESTAMP", required=True),
            _c("rows_destroyed", "BIGINT", required=True),
            _c(
                "certificate",
                "VARCHAR",
                required=True,
                doc="JSON destruction certificate",
            ),
        ),
        ("purge_id",),
        doc="Destruction of a provider's data when its agreements ended.",
    ),
)

# Added by migration 7 (with analytic.INDICATOR_TABLES): indicator definitions
# and the risk model.
MODEL_TABLES = (
    Table(
        "gov",
        "indicator_definition",
        (
            _c("version", "INTEGER", required=True),
            _c("document", "VARCHAR", required=True, doc="the YAML as recorded"),
            _c("checksum", "VARCHAR", required=True),
            _c("recorded_at", "TIMESTAMP", required=True),
            _c("recorded_by", "VARCHAR", required=True),
            _c("note", "VARCHAR"),
        ),
        ("version",),
        doc="Every version of the early-warning indicator definitions.",
    ),
    Table(
        "gov",
        "risk_model",
        (
            _c("model_id", "INTEGER", required=True),
            _c("trained_at", "TIMESTAMP", required=True),
            _c("trained_by", "VARCHAR", required=True),
            _c("definition_version", "INTEGER", required=True),
            _c("best", "VARCHAR", required=True),
            _c("file", "VARCHAR", required=True, doc="under the warehouse's models/"),
            _c("checksum", "VARCHAR", required=True),
            _c("report", "VARCHAR", required=True, doc="JSON validation report"),
        ),
        ("model_id",),
        doc="Trained risk models and their validation on later cohorts.",
    ),
    Table(
        "gov",
        "release_unit",
        (
            _c(
                "unit", "VARCHAR", required=True, doc="keyed hash, as in release_member"
            ),
            _c("atom", "BIGINT", required=True),
        ),
        (),
        doc="The audit state kept between releases: each unit any suppressed "
        "release counted, and its atom (the units counted in exactly the same cells).",
    ),
    Table(
        "gov",
        "release_atom",
        (
            _c("atom", "BIGINT", required=True),
            _c("units", "BIGINT", required=True),
            _c(
                "threshold",
                "INTEGER",
                required=True,
                doc="the strictest minimum cell size among its units' providers",
            ),
        ),
        (),
        doc="The atoms of the audit state, with their sizes.",
    ),
    Table(
        "gov",
        "release_row",
        (
            _c("row_id", "BIGINT", required=True),
            _c("atom", "BIGINT", required=True),
        ),
        (),
        doc="Earlier cells the audit keeps, as sets of atoms.",
    ),
    Table(
        "gov",
        "release_row_info",
        (
            _c("row_id", "BIGINT", required=True),
            _c(
                "kind",
                "VARCHAR",
                required=True,
                doc="known (a published cell, independent of the other known) "
                "or target (a small suppressed cell)",
            ),
            _c("threshold", "INTEGER", required=True),
        ),
        (),
        doc="What each kept row is to the audit.",
    ),
    Table(
        "gov",
        "release_audit_state",
        (
            _c("identity", "VARCHAR", required=True, doc="the links it was built on"),
            _c("through_release", "BIGINT", required=True),
            _c("next_atom", "BIGINT", required=True),
            _c("next_row", "BIGINT", required=True),
        ),
        (),
        doc="How far the audit state is in step with the ledger (one row).",
    ),
)
