"""The policy layer: who may see which rows and fields of whose data, for what.

:meth:`Policy.grants` answers, for one principal, purpose, entity, operation and
day, one :class:`Grant` or :class:`Refusal` per provider whose data the entity
holds. A grant carries the agreement version relied on, the access level, the
fields that survive masking and the row scope:

- a partner always sees its own data (it is the discloser);
- the steward sees what the agreements give the steward;
- any other recipient sees another provider's rows only about the persons it holds
  records of itself (a district: the persons it enrolls; a community organization:
  its participants), and only as that provider's agreement grants;
- aggregates draw on every row the agreement covers; they leave only through the
  release gate;
- where an agreement rests on consent, only persons with a current grant flow;
- ``pseudonymous`` access replaces ids with the recipient's own keyed pseudonyms
  and drops every identifying field.

:func:`permitted_rows_sql` turns a grant into the one query that materializes the
permitted rows; it is a pure function, tested as a string and on fixtures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from backbone.model.calendar import school_year_sql
from backbone.model.schema import ALL_TABLES, PERIOD_SQL, Table
from backbone.partners.agreements.decide import (
    AccessRequest,
    VersionView,
    decide,
)
from backbone.partners.agreements.document import (
    AccessLevel,
    AgreementDocument,
    Classification,
    LegalBasis,
    PublicationMethod,
)
from backbone.partners.agreements.inforce import in_force_by_agreement

__all__ = [
    "ENTITIES",
    "IDENTIFYING",
    "Grant",
    "Refusal",
    "RowScope",
    "decide_grants",
    "in_force_versions",
    "permitted_rows_sql",
    "pseudonym_sql",
    "subject_columns",
]

# Person-level entities a principal may ask for, by name.
ENTITIES: dict[str, Table] = {
    t.name: t
    for t in ALL_TABLES
    if (t.schema == "analytic" and t.person_level)
    or t.name in ("partner_record", "record_person")
}
# Entities derived from another that the agreements name: the crosswalk of local
# ids to persons is governed as the identifying records it was made from.
GOVERNED_AS = {"record_person": "partner_record"}
# Fields that identify a person; never shown under pseudonymous access.
IDENTIFYING = frozenset(
    {
        "local_id",
        "student_local_id",
        "first_name",
        "middle_name",
        "last_surname",
        "generation_code_suffix",
        "birth_date",
        "address",
        "postal_code",
        "state_student_id",
        "identification_system",
    }
)
# The steward's own purpose: reading identifying records to link and review them,
# which the agreements grant as the ``link`` operation rather than as a purpose.
IDENTITY_RESOLUTION = "identity_resolution"
# Bookkeeping columns every grant may carry.
LINEAGE = ("provider_partner_id", "partner_id", "submission_id")


def subject_columns(entity: str) -> tuple[str, str]:
    """(provider column, local id column) of an entity."""
    if entity in ("partner_record", "record_person"):
        return "partner_id", "local_id"
    return "provider_partner_id", "student_local_id"


# What shows that a partner serves a person: facts it sent about them (an
# enrollment, a service, a course, a score), not a bare roster line or a
# demographics row, which anyone can type in about anyone.
CORROBORATING = (
    "enrollment",
    "attendance_event",
    "attendance_period",
    "discipline_incident",
    "discipline_action",
    "course_transcript",
    "student_academic_record",
    "student_assessment",
    "program_participation",
    "program_attendance",
    "graduation",
    "postsecondary_enrollment",
    "postsecondary_event",
)


def held_records_sql() -> tuple[str, int]:
    """The local ids of a partner's records that its own facts corroborate, or a
    steward admin confirmed (one ``?`` per part, each the partner), and how many
    ``?`` it takes: a record grants sight of others' facts about its person only
    then (a false roster line opens nothing)."""
    parts = [
        f"SELECT student_local_id FROM {ENTITIES[e].qualified_name} "
        "WHERE provider_partner_id = ?"
        for e in CORROBORATING
    ]
    parts.append(f"SELECT hc.local_id {_CONFIRMED} WHERE hc.partner_id = ?")
    return " UNION ".join(parts), len(parts)


# a steward admin's confirmation holds while its record stays linked to the person
# confirmed (a local id sent again for someone else opens nothing)
_CONFIRMED = (
    "FROM gov.held_confirmation hc JOIN identity.record_person cr ON "
    "cr.partner_id = hc.partner_id AND cr.local_id = hc.local_id AND "
    "cr.person_id = hc.person_id"
)


def corroborated_records_sql() -> str:
    """(partner, local id) of every record that :func:`held_records_sql` counts,
    of every partner at once."""
    parts = [
        "SELECT provider_partner_id, student_local_id FROM "
        f"{ENTITIES[e].qualified_name}"
        for e in CORROBORATING
    ]
    parts.append(f"SELECT hc.partner_id, hc.local_id {_CONFIRMED}")
    return " UNION ".join(parts)


@dataclass(frozen=True)
class RowScope:
    persons_of: str | None = None
    """Only persons linked to a record of this partner that its own facts
    corroborate (:func:`held_records_sql`; None: every row)."""
    school_years: tuple[int, ...] | None = None
    consent_purpose: str | None = None
    """Only persons with a current consent grant for this purpose."""
    persons_consent_purpose: str | None = None
    """The recipient's own records count towards ``persons_of`` only with a current
    consent grant for this purpose (its own agreement rests on consent)."""


@dataclass(frozen=True)
class Grant:
    provider: str
    entity: str
    access: AccessLevel
    fields: tuple[str, ...]
    """Fields that may be materialized (masked ones already removed)."""
    agreement: str | None
    """``agreement_id@version`` relied on; None for a partner's own data."""
    reason: str
    scope: RowScope
    min_cell_size: int
    dp_budget: float | None = None
    top_bottom: tuple[float, float] | None = None
    """The agreement's top and bottom coding of rates, in percent."""
    private_epsilon: float | None = None
    """Set when the agreement publishes by differential privacy: what one count
    table spends (a table of its data is then never released by suppression)."""
    extract_k: int = 5
    """How many pseudonyms must share each history in a pseudonymous extract."""


@dataclass(frozen=True)
class Refusal:
    provider: str
    entity: str
    reason: str
    agreement: str | None = None


def _document(views: list[VersionView], ref: str) -> AgreementDocument:
    return next(v.document for v in views if v.ref == ref)


def _declared(doc: AgreementDocument, table: Table) -> tuple[str, ...]:
    dataset = doc.dataset(GOVERNED_AS.get(table.name, table.name))
    names = dataset.field_names() if dataset else set()
    return tuple(c.name for c in table.columns if c.name in names)


def _unmasked(
    doc: AgreementDocument | None, table: Table, fields: tuple[str, ...]
) -> tuple[str, ...]:
    """Drop identifying fields and fields the agreement classes as directory or
    restricted: what pseudonymous access leaves."""
    hidden = set(IDENTIFYING)
    dataset = doc.dataset(GOVERNED_AS.get(table.name, table.name)) if doc else None
    if dataset is not None:
        hidden |= {
            f.name
            for f in dataset.fields
            if f.classification in (Classification.directory, Classification.restricted)
        }
    return tuple(f for f in fields if f not in hidden)


def in_force_versions(
    views: list[VersionView], provider: str, on: date
) -> list[VersionView]:
    """The version in force on ``on`` of each agreement ``provider`` discloses under."""
    return list(
        in_force_by_agreement(
            (v for v in views if v.document.parties.provider == provider), on
        ).values()
    )


def _rests_on_consent(partner: str, views: list[VersionView], on: date) -> bool:
    """Whether an agreement of ``partner``'s, as provider, in force on ``on`` rests
    on consent: then its records may define whom it sees only with consent."""
    return any(
        v.document.legal_basis.basis is LegalBasis.consent
        or v.document.population.consent_required
        for v in in_force_versions(views, partner, on)
    )


def _private_epsilon(doc: AgreementDocument) -> float | None:
    """The epsilon per table of an agreement that publishes by differential
    privacy (its lint requires one; a missing one spends the whole budget at once
    rather than falling back to suppression)."""
    publication = doc.publication
    if publication.method is not PublicationMethod.differential_privacy:
        return None
    budget = publication.dp_budget
    if budget is None:
        return math.inf  # no budget: the gate refuses, naming the agreement
    return budget.epsilon_per_release or budget.epsilon


def _coding(doc: AgreementDocument) -> tuple[float, float] | None:
    coding = doc.publication.top_bottom_coding
    return (coding.top_percent, coding.bottom_percent) if coding else None


def decide_grants(
    *,
    user_partner: str,
    role: str,
    is_steward: bool,
    pseudonymous_only: bool,
    entity: str,
    purpose: str,
    operation: str,
    on: date,
    providers: list[str],
    views: list[VersionView],
    default_min_cell_size: int,
    link_with: str | None = None,
) -> list[Grant | Refusal]:
    """One grant or refusal per provider. Pure: the caller supplies the agreement
    versions and the providers that hold rows of the entity."""
    table = ENTITIES[entity]
    asked = operation
    identity_resolution = purpose == IDENTITY_RESOLUTION
    if identity_resolution:
        # the steward's looking at identifying records to link and review them: a
        # row-level view under the agreements' ``link``, never an export or a count
        operation = "link"
    # the person id is joined on by the query itself, never read as a field
    every_field = tuple(c.name for c in table.columns if c.name != "person_id")
    out: list[Grant | Refusal] = []
    for provider in providers:
        if provider == user_partner:
            access = (
                AccessLevel.pseudonymous
                if pseudonymous_only
                else AccessLevel.identified
            )
            fields = (
                _unmasked(None, table, every_field)
                if access is AccessLevel.pseudonymous
                else every_field
            )
            out.append(
                Grant(
                    provider,
                    entity,
                    access,
                    fields,
                    None,
                    f"{provider}'s own data",
                    RowScope(),
                    default_min_cell_size,
                )
            )
            continue
        if identity_resolution and (
            asked not in ("row_level_view", "link")
            or not is_steward
            or GOVERNED_AS.get(entity, entity) != "partner_record"
        ):
            out.append(
                Refusal(
                    provider,
                    entity,
                    "identity resolution is the steward's row-level view of "
                    "identifying records; name the purpose the data is for",
                )
            )
            continue
        decision = decide(
            AccessRequest(
                provider=provider,
                recipient=user_partner,
                entity=GOVERNED_AS.get(entity, entity),
                fields=(),
                purpose=purpose,
                operation=operation,
                on=on,
                role=role,
                link_with=link_with,
            ),
            views,
        )
        if not decision.allowed or decision.agreement is None:
            out.append(Refusal(provider, entity, decision.reason, decision.agreement))
            continue
        doc = _document(views, decision.agreement)
        access = AccessLevel(decision.access or "aggregate")
        if pseudonymous_only and access is AccessLevel.identified:
            access = AccessLevel.pseudonymous
        declared = _declared(doc, table)
        keys = tuple(
            c for c in every_field if c in LINEAGE or c in subject_columns(entity)
        )
        fields = tuple(c for c in every_field if c in declared or c in keys)
        if access is not AccessLevel.identified:
            fields = _unmasked(doc, table, fields)
        consent = (
            doc.legal_basis.basis is LegalBasis.consent
            or doc.population.consent_required
        )
        # a partner's users see others' rows only about persons it holds records of;
        # the steward and researchers work over the agreement's whole population
        # (researchers only ever pseudonymously)
        # researchers see the population only where the agreement names the role
        researcher_named = pseudonymous_only and any(
            r.partner == user_partner and role in r.roles for r in doc.recipients
        )
        own_persons_only = operation != "aggregate" and not (
            is_steward or researcher_named
        )
        scope = RowScope(
            persons_of=user_partner if own_persons_only else None,
            persons_consent_purpose=(
                purpose
                if own_persons_only and _rests_on_consent(user_partner, views, on)
                else None
            ),
            school_years=doc.population.school_years,
            consent_purpose=purpose if consent else None,
        )
        out.append(
            Grant(
                provider,
                entity,
                access,
                fields,
                decision.agreement,
                decision.reason,
                scope,
                doc.publication.min_cell_size,
                doc.publication.dp_budget.epsilon
                if doc.publication.dp_budget
                else None,
                _coding(doc),
                _private_epsilon(doc),
                doc.publication.extract_k,
            )
        )
    return out


def _consented_sql(
    provider: str, purpose: str, on: date, school_year: int
) -> tuple[str, list[object]]:
    """Local ids of ``provider`` whose latest consent decision on ``on`` is a
    current grant for ``purpose``; on the same day a denial wins over a grant."""
    return (
        "SELECT student_local_id FROM ("
        "SELECT student_local_id, consent_status, expiration_date, school_year, "
        "row_number() OVER (PARTITION BY student_local_id ORDER BY "
        "decision_date DESC, consent_status = 'granted') AS latest "
        "FROM analytic.consent WHERE provider_partner_id = ? "
        "AND consent_scope IN (?, 'all') AND decision_date <= ?) "
        "WHERE latest = 1 AND consent_status = 'granted' "
        "AND (expiration_date IS NULL OR expiration_date >= ?) "
        "AND (school_year IS NULL OR school_year = ?)",
        [provider, purpose, on, on, school_year],
    )


def pseudonym_sql(person: str, provider: str, local: str) -> str:
    """A recipient's keyed pseudonym of a row's person (two ``?``: the key twice):
    nested keyed SHA-256 (HMAC-style: no length extension), computed in SQL so no
    Python loop touches the rows; an unlinked record gets one of its own."""
    return (
        f"substr(sha256(? || sha256(? || coalesce(CAST({person} AS VARCHAR), "
        f"'record:' || {provider} || ':' || {local}))), 1, 20)"
    )


def permitted_rows_sql(
    grant: Grant,
    *,
    on: date,
    school_year: int,
    pseudonym_key: str | None = None,
    school_year_start_month: int,
) -> tuple[str, list[object]]:
    """The query (and its parameters) that reads exactly the rows and fields a
    grant permits, with the linked ``person_id`` of each row's subject, or under
    pseudonymous access the recipient's ``pseudonym`` for it instead.

    Names come from the canonical model (never from the request); values are
    parameters. ``on`` and its school year decide which consent grants are current.
    """
    table = ENTITIES[grant.entity]
    provider_col, local_col = subject_columns(grant.entity)
    select = [f"t.{f}" for f in grant.fields]
    params: list[object] = []
    if grant.access is AccessLevel.identified:
        select.append("rp.person_id")
    else:
        if pseudonym_key is None:
            raise ValueError("pseudonymous access needs the recipient's key")
        # nested keyed SHA-256 (HMAC-style: no length extension), computed in SQL
        # so no Python loop touches the rows; unlinked records get one too
        select.append(
            f"{pseudonym_sql('rp.person_id', f't.{provider_col}', f't.{local_col}')} "
            "AS pseudonym"
        )
        params += [pseudonym_key, pseudonym_key]
    params.append(grant.provider)
    where = [f"t.{provider_col} = ?"]
    scope = grant.scope
    period = PERIOD_SQL.get(grant.entity)
    if scope.school_years is not None and period is not None:
        # the agreement's school years, by the row's school year or its date
        where.append(
            "list_contains(?, t.school_year)"
            if period == "school_year"
            else f"list_contains(?, {school_year_sql(f't.{period}', school_year_start_month)})"
        )
        params.append(list(scope.school_years))
    if scope.persons_of is not None:
        corroborated, facts = held_records_sql()
        held = (
            "SELECT person_id FROM identity.record_person WHERE partner_id = ? "
            f"AND local_id IN ({corroborated})"
        )
        params.append(scope.persons_of)
        params += [scope.persons_of] * facts
        if scope.persons_consent_purpose is not None:
            consented, more = _consented_sql(
                scope.persons_of, scope.persons_consent_purpose, on, school_year
            )
            held += f" AND local_id IN ({consented})"
            params += more
        where.append(f"rp.person_id IN ({held})")
    if scope.consent_purpose is not None:
        consented, more = _consented_sql(
            grant.provider, scope.consent_purpose, on, school_year
        )
        where.append(f"t.{local_col} IN ({consented})")
        params += more
    sql = (
        f"SELECT {', '.join(select)} FROM {table.qualified_name} t "
        "LEFT JOIN identity.record_person rp "
        f"ON rp.partner_id = t.{provider_col} AND rp.local_id = t.{local_col} "
        f"WHERE {' AND '.join(where)}"
    )
    return sql, params
