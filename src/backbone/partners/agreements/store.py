"""Agreements as living documents: versions, approvals, the version in force.

Every version's YAML is kept twice: in ``gov.agreement_version`` (with its checksum)
and as ``agreements/<id>/v<N>.yaml`` in the warehouse folder. Nothing is ever
overwritten or deleted. A version that widens what recipients get is *pending* until
every party has approved it; a narrowing or neutral one is in force from its date.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from backbone.engines import Connection
from backbone.engines.duckdb import transaction
from backbone.errors import InputFileError, NotFoundError, UserError
from backbone.partners.agreements.decide import (
    AccessRequest,
    Decision,
    VersionView,
    decide,
)
from backbone.partners.agreements.diff import Change, Effect, classify, diff_documents
from backbone.partners.agreements.document import (
    AgreementDocument,
    dump_document,
    load_document,
    parse_document,
)
from backbone.partners.agreements.inforce import VersionState, version_in_force
from backbone.partners.agreements.lint import Finding, Severity, lint_document
from backbone.session import Session
from backbone.yamltext import read_yaml

__all__ = ["AgreementRegistry", "Amendment", "VersionRecord"]


@dataclass(frozen=True)
class VersionRecord:
    agreement_id: str
    version: int
    effective_from: date
    summary: str
    change_class: str
    status: str
    in_force_from: date | None
    recorded_at: datetime
    approvals: tuple[tuple[str, str, date], ...]
    """(partner, approved by, approved on)"""
    document: AgreementDocument

    @property
    def awaiting(self) -> tuple[str, ...]:
        approved = {a[0] for a in self.approvals}
        return tuple(p for p in self.document.parties.all() if p not in approved)

    @property
    def ref(self) -> str:
        return f"{self.agreement_id}@{self.version}"

    def view(self) -> VersionView:
        return VersionView(
            self.agreement_id,
            self.version,
            self.document,
            self.status,
            self.in_force_from,
            self.awaiting,
        )


def _write_once(s: Session, path: Path, text: str) -> None:
    """Write a version file when the unit commits; an existing file is never replaced."""
    if path.exists():
        if path.read_text(encoding="utf-8") == text:
            return
        raise UserError(
            f"{path} already holds a different version; versions are never overwritten."
        )
    s.write_file(path, text)


@dataclass(frozen=True)
class Amendment:
    """A version recorded by :meth:`AgreementRegistry.amend`, with how it differs
    from the version before it."""

    version: VersionRecord
    changes: tuple[Change, ...]


class AgreementRegistry:
    def __init__(self, con: Connection, folder: Path) -> None:
        self._con = con
        self._folder = folder
        self._parsed: dict[str, AgreementDocument] = {}
        """Recorded versions never change: parse each one once (keyed by checksum)."""

    def _document(self, text: str, source: str) -> AgreementDocument:
        key = hashlib.sha256(text.encode()).hexdigest()
        doc = self._parsed.get(key)
        if doc is None:
            doc = parse_document(read_yaml(text), source=source)
            self._parsed[key] = doc
        return doc

    # --- recording ---------------------------------------------------------------
    #
    # Agreements decide every read, so only a steward admin records, amends or
    # withdraws them; a party's approval is given by one of its analysts or recorded
    # for it by a steward admin. Each write is one audit entry in the session's
    # transaction; everything a write reads goes through the session's cursor.

    def _check_references(
        self,
        con: Connection,
        doc: AgreementDocument,
        source: Path | str,
    ) -> None:
        known = {
            r[0] for r in con.execute("SELECT partner_id FROM ref.partner").fetchall()
        }
        named = [
            ("parties.provider", doc.parties.provider),
            ("parties.recipient", doc.parties.recipient),
        ]
        named += [
            (f"parties.licensees[{i}]", p) for i, p in enumerate(doc.parties.licensees)
        ]
        named += [
            (f"recipients[{i}].partner", r.partner)
            for i, r in enumerate(doc.recipients)
        ]
        named += [
            (f"linkage.linkable_with[{i}]", p)
            for i, p in enumerate(doc.linkage.linkable_with)
        ]
        named += [
            (f"signatories[{i}].partner", s.partner)
            for i, s in enumerate(doc.signatories)
        ]
        unknown = [
            f"{path}: unknown partner {pid!r}"
            for path, pid in named
            if pid not in known
        ]
        parties = set(doc.parties.all())
        not_party = [
            f"signatories[{i}].partner: {s.partner} is not a party"
            for i, s in enumerate(doc.signatories)
            if s.partner not in parties
        ]
        if unknown or not_party:
            hint = (
                " Register partners with `backbone partner add` first."
                if unknown
                else ""
            )
            raise InputFileError(
                "; ".join(unknown + not_party) + "." + hint + " Nothing was recorded.",
                path=source,
            )

    def add(self, s: Session, path: Path) -> VersionRecord:
        """Record a new agreement from its YAML document as version 1 (a steward
        admin)."""
        s.require(
            "administer", f"record the agreement in {path.name}", action="agreement"
        )
        return self._add_document(s, load_document(path), path)

    def add_document(
        self, s: Session, doc: AgreementDocument, *, source: Path | str = "<document>"
    ) -> VersionRecord:
        """Record a new agreement as version 1 (a steward admin); the parties that
        signed it (its signatories) have approved it."""
        s.require(
            "administer", f"record the agreement {doc.agreement_id}", action="agreement"
        )
        return self._add_document(s, doc, source)

    def _add_document(
        self, s: Session, doc: AgreementDocument, source: Path | str
    ) -> VersionRecord:
        con = s.con
        if doc.version not in (None, 1):
            raise InputFileError(
                f"a new agreement starts at version 1, not {doc.version}; to change "
                f"{doc.agreement_id} use `backbone agreement amend`.",
                path=source,
            )
        if self._histories(con, doc.agreement_id):
            raise UserError(
                f"Agreement {doc.agreement_id} already exists; record changes with "
                f"`backbone agreement amend {doc.agreement_id} FILE --effective DATE --summary TEXT`."
            )
        self._check_references(con, doc, source)
        doc = doc.model_copy(update={"version": 1})
        signed = {sig.partner: sig for sig in doc.signatories}
        self._record(
            s,
            doc,
            doc.effective_from,
            "initial agreement",
            "initial",
            [
                (p, signed[p].name, signed[p].signed)
                for p in doc.parties.all()
                if p in signed
            ],
        )
        v = self._version(con, doc.agreement_id, 1)
        s.record(
            "agreement",
            f"recorded {v.ref} ({v.status})",
            providers=(doc.parties.provider,),
            agreements=(v.ref,),
        )
        return v

    def amend(
        self,
        s: Session,
        agreement_id: str,
        path: Path,
        *,
        effective: date,
        summary: str,
    ) -> Amendment:
        """Record the next version (a steward admin); widening versions wait for
        every party's approval."""
        s.require(
            "administer", f"amend the agreement {agreement_id}", action="agreement"
        )
        con = s.con
        history = self._versions(con, agreement_id)
        # The baseline is the latest version that was not withdrawn: a withdrawn
        # widening must not become the yardstick that makes the next one look narrow.
        previous = [v for v in history if v.status != "withdrawn"][-1]
        doc = load_document(path)
        if doc.agreement_id != agreement_id:
            raise InputFileError(
                f"the document is for agreement {doc.agreement_id}, not {agreement_id}.",
                path=path,
            )
        expected = history[-1].version + 1
        if doc.version is not None and doc.version != expected:
            raise InputFileError(
                f"version {doc.version} skips or repeats a version; the next version of "
                f"{agreement_id} is {expected}.",
                path=path,
            )
        if previous.status == "pending":
            raise UserError(
                f"{previous.ref} still awaits approval by {', '.join(previous.awaiting)}; "
                "approve or withdraw it before recording another version."
            )
        if not summary.strip():
            raise UserError(
                "Give the amendment a summary (--summary) saying what changed and why."
            )
        if effective < previous.effective_from:
            raise UserError(
                f"The amendment's effective date {effective} is before version "
                f"{previous.version}'s ({previous.effective_from}); dates must move forward."
            )
        if doc.parties.provider != previous.document.parties.provider:
            raise InputFileError(
                "an amendment cannot change the provider; record a new agreement instead.",
                path=path,
            )
        self._check_references(con, doc, path)
        changes = diff_documents(previous.document, doc)
        if not changes:
            raise UserError(
                f"{path} is identical to {previous.ref}; nothing to record."
            )
        effect = classify(changes)
        doc = doc.model_copy(update={"version": expected})
        self._record(s, doc, effective, summary, effect.value, [])
        v = self._version(con, agreement_id, expected)
        s.record(
            "agreement",
            f"recorded {v.ref} ({v.change_class}, {v.status}): {summary}",
            providers=(doc.parties.provider,),
            agreements=(v.ref,),
        )
        return Amendment(v, tuple(changes))

    def _record(
        self,
        s: Session,
        doc: AgreementDocument,
        effective: date,
        summary: str,
        change_class: str,
        approvals: list[tuple[str, str, date]],
    ) -> None:
        text = dump_document(doc)
        digest = hashlib.sha256(text.encode()).hexdigest()
        assert doc.version is not None
        con = s.con
        now = s.clock()
        with transaction(con):
            con.execute(
                "INSERT INTO gov.agreement_version VALUES (?, ?, ?, ?, ?, ?, 'pending', NULL, ?, ?, ?)",
                [
                    doc.agreement_id,
                    doc.version,
                    doc.parties.provider,
                    effective,
                    summary,
                    change_class,
                    now,
                    digest,
                    text,
                ],
            )
            for partner, by, on in approvals:
                con.execute(
                    "INSERT INTO gov.agreement_approval VALUES (?, ?, ?, ?, ?, ?)",
                    [doc.agreement_id, doc.version, partner, by, on, now],
                )
            _settle(con, doc.agreement_id, doc.version, change_class)
            _write_once(
                s, self._folder / doc.agreement_id / f"v{doc.version}.yaml", text
            )

    def approve(
        self,
        s: Session,
        agreement_id: str,
        partner_id: str,
        *,
        on: date,
        version: int | None = None,
        title: str | None = None,
    ) -> VersionRecord:
        """Record ``partner_id``'s approval of a pending version (the latest unless
        ``version`` is given), given on ``on``.

        An analyst of that partner approves for it; a steward admin may record the
        approval on its behalf. Either way the signed-in user is who approved;
        ``title`` (the signatory's title, say) goes into the audit entry only.
        """
        who = s.require(
            "act_for_partner",
            f"approve {agreement_id} for {partner_id}",
            partner=partner_id,
            action="agreement",
        )
        con = s.con
        history = self._versions(con, agreement_id)
        record = (
            history[-1] if version is None else _pick(history, agreement_id, version)
        )
        if partner_id not in record.document.parties.all():
            raise UserError(
                f"{partner_id} is not a party to {agreement_id}; its parties are "
                f"{', '.join(record.document.parties.all())}."
            )
        if record.status != "pending":
            raise UserError(
                f"{record.ref} is {record.status}; there is nothing to approve."
            )
        if partner_id not in record.awaiting:
            raise UserError(f"{partner_id} has already approved {record.ref}.")
        with transaction(con):
            con.execute(
                "INSERT INTO gov.agreement_approval VALUES (?, ?, ?, ?, ?, ?)",
                [agreement_id, record.version, partner_id, who.user_id, on, s.clock()],
            )
            _settle(con, agreement_id, record.version, record.change_class)
        v = self._version(con, agreement_id, record.version)
        s.record(
            "agreement",
            f"recorded {partner_id}'s approval of {v.ref} given on {on}"
            + (f" (signed by {title})" if title else "")
            + (f"; {v.ref} in force from {v.in_force_from}" if v.in_force_from else ""),
            providers=(v.document.parties.provider,),
            agreements=(v.ref,),
            on_behalf_of=partner_id if partner_id != who.partner_id else None,
            detail={"title": title} if title else {},
        )
        return v

    def withdraw(self, s: Session, agreement_id: str, version: int) -> VersionRecord:
        """Withdraw a pending version (a steward admin): it stays in the history,
        never in force."""
        s.require(
            "administer", f"withdraw {agreement_id}@{version}", action="agreement"
        )
        con = s.con
        record = self._version(con, agreement_id, version)
        if record.status != "pending":
            raise UserError(
                f"Only a pending version can be withdrawn; {record.ref} is {record.status}."
            )
        con.execute(
            "UPDATE gov.agreement_version SET status = 'withdrawn' WHERE agreement_id = ? AND version = ?",
            [agreement_id, version],
        )
        v = self._version(con, agreement_id, version)
        s.record(
            "agreement",
            f"withdrew {v.ref}",
            providers=(v.document.parties.provider,),
            agreements=(v.ref,),
        )
        return v

    # --- reading -------------------------------------------------------------------

    def versions(self, agreement_id: str) -> list[VersionRecord]:
        return self._versions(self._con, agreement_id)

    def _versions(self, con: Connection, agreement_id: str) -> list[VersionRecord]:
        history = self._histories(con, agreement_id).get(agreement_id)
        if not history:
            raise NotFoundError(
                f"No agreement {agreement_id!r}; `backbone agreement list` shows them."
            )
        return history

    def _histories(
        self, con: Connection, agreement_id: str | None = None
    ) -> dict[str, list[VersionRecord]]:
        """Every version of one agreement, or of all (two queries either way),
        by agreement id, oldest version first."""
        where, params = (
            ("WHERE agreement_id = ? ", [agreement_id]) if agreement_id else ("", [])
        )
        approvals: dict[tuple[str, int], list[tuple[str, str, date]]] = {}
        for aid, version, partner, by, on in con.execute(
            "SELECT agreement_id, version, partner_id, approved_by, approved_on "
            f"FROM gov.agreement_approval {where}"
            "ORDER BY approved_on, partner_id",
            params,
        ).fetchall():
            approvals.setdefault((aid, version), []).append((partner, by, on))
        out: dict[str, list[VersionRecord]] = {}
        for r in con.execute(
            "SELECT agreement_id, version, effective_from, summary, change_class, "
            f"status, in_force_from, recorded_at, document FROM gov.agreement_version "
            f"{where}ORDER BY agreement_id, version",
            params,
        ).fetchall():
            out.setdefault(r[0], []).append(
                VersionRecord(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6],
                    r[7],
                    tuple(approvals.get((r[0], r[1]), [])),
                    self._document(r[8], f"{r[0]}@{r[1]}"),
                )
            )
        return out

    def histories(self) -> dict[str, list[VersionRecord]]:
        """Every agreement's versions, read at once (by agreement id)."""
        return self._histories(self._con)

    def version(self, agreement_id: str, version: int) -> VersionRecord:
        return self._version(self._con, agreement_id, version)

    def _version(
        self, con: Connection, agreement_id: str, version: int
    ) -> VersionRecord:
        return _pick(self._versions(con, agreement_id), agreement_id, version)

    def in_force(self, agreement_id: str, on: date) -> VersionRecord | None:
        """The version in force on ``on`` (see :mod:`.inforce`), or None."""
        return version_in_force(self.versions(agreement_id), on)

    def state(self, agreement_id: str, on: date) -> VersionState[VersionRecord]:
        """The version in force on ``on`` and whether it applies that day."""
        return VersionState(self.in_force(agreement_id, on), on)

    def ids(self) -> list[str]:
        return [
            r[0]
            for r in self._con.execute(
                "SELECT DISTINCT agreement_id FROM gov.agreement_version ORDER BY 1"
            ).fetchall()
        ]

    def all_versions(self) -> list[VersionRecord]:
        return [v for history in self.histories().values() for v in history]

    def states(
        self, on: date, histories: dict[str, list[VersionRecord]] | None = None
    ) -> dict[str, VersionState[VersionRecord]]:
        """Each agreement's version in force on ``on`` and whether it applies
        (of ``histories`` when a caller has read them already)."""
        return {
            aid: VersionState(version_in_force(history, on), on)
            for aid, history in (histories or self.histories()).items()
        }

    def diff(self, agreement_id: str, v1: int, v2: int) -> list[Change]:
        return diff_documents(
            self.version(agreement_id, v1).document,
            self.version(agreement_id, v2).document,
        )

    def lint(self, agreement_id: str | None = None) -> dict[str, list[Finding]]:
        """Findings for the latest version of each agreement (or of one)."""
        ids = [agreement_id] if agreement_id else self.ids()
        out: dict[str, list[Finding]] = {}
        for aid in ids:
            history = self.versions(aid)
            latest = history[-1]
            findings = lint_document(latest.document)
            # the version actually relied on is checked too when a newer one is pending
            relied = [v for v in history if v.status == "approved"]
            if relied and relied[-1].version != latest.version:
                for f in lint_document(relied[-1].document):
                    findings.append(
                        Finding(f.severity, f"{relied[-1].ref}: {f.path}", f.message)
                    )
            path = self._folder / aid / f"v{latest.version}.yaml"
            if (
                not path.exists()
                or hashlib.sha256(path.read_bytes()).hexdigest()
                != hashlib.sha256(dump_document(latest.document).encode()).hexdigest()
            ):
                findings.append(
                    Finding(
                        Severity.error,
                        str(path),
                        "the version file is missing or was edited after it was recorded",
                    )
                )
            out[latest.ref] = findings
        return out

    def decide(self, request: AccessRequest) -> Decision:
        return decide(request, [v.view() for v in self.all_versions()])

    def expiring(
        self,
        on: date,
        within_days: int,
        histories: dict[str, list[VersionRecord]] | None = None,
    ) -> list[VersionRecord]:
        out = []
        for history in (histories or self.histories()).values():
            current = version_in_force(history, on)
            end = current.document.effective_to if current else None
            if current and end and 0 <= (end - on).days <= within_days:
                out.append(current)
        return out

    def pending(
        self, histories: dict[str, list[VersionRecord]] | None = None
    ) -> list[VersionRecord]:
        return [
            v
            for history in (histories or self.histories()).values()
            for v in history
            if v.status == "pending"
        ]


def _pick(
    history: list[VersionRecord], agreement_id: str, version: int
) -> VersionRecord:
    for record in history:
        if record.version == version:
            return record
    raise NotFoundError(
        f"{agreement_id} has no version {version}; `backbone agreement history {agreement_id}` lists them."
    )


def _settle(
    con: Connection, agreement_id: str, version: int, change_class: str
) -> None:
    """Put a version in force once it needs no (more) approvals."""
    effective, text = con.execute(
        "SELECT effective_from, document FROM gov.agreement_version WHERE agreement_id = ? AND version = ?",
        [agreement_id, version],
    ).fetchall()[0]
    doc = parse_document(read_yaml(text), source=f"{agreement_id}@{version}")
    approvals = dict(
        con.execute(
            "SELECT partner_id, approved_on FROM gov.agreement_approval WHERE agreement_id = ? AND version = ?",
            [agreement_id, version],
        ).fetchall()
    )
    needs_all = change_class in ("initial", Effect.widening.value)
    if needs_all and any(p not in approvals for p in doc.parties.all()):
        return
    # Never in force before the version it amends: a narrowing dated between a
    # widening's effective date and its approval must not carry the widening early.
    before = con.execute(
        "SELECT max(in_force_from) FROM gov.agreement_version WHERE agreement_id = ? "
        "AND version < ? AND status = 'approved'",
        [agreement_id, version],
    ).fetchall()[0][0]
    starts = [
        effective,
        *(approvals.values() if needs_all else ()),
        *([before] if before else []),
    ]
    in_force = max(starts)
    con.execute(
        "UPDATE gov.agreement_version SET status = 'approved', in_force_from = ? "
        "WHERE agreement_id = ? AND version = ?",
        [in_force, agreement_id, version],
    )
