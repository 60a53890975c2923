"""Differences between two versions of an agreement, each classed by its effect.

*Widening* gives recipients more: a new purpose, field, entity, recipient, role or
operation, higher access, linkage, longer duration or retention, a lower minimum cell
size, weaker protections. *Narrowing* gives less. *Neutral* changes (titles,
contacts, citations) change no one's access. A version with any widening change needs
every party's approval before it takes effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from backbone.partners.agreements.document import (
    ACCESS_ORDER,
    REDISCLOSURE_ORDER,
    AgreementDocument,
    Recipient,
)

__all__ = ["Change", "Effect", "classify", "diff_documents"]


class Effect(StrEnum):
    widening = "widening"
    narrowing = "narrowing"
    neutral = "neutral"


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any
    effect: Effect

    def describe(self) -> str:
        if self.before is None:
            return f"added {self.path}: {self.after}"
        if self.after is None:
            return f"removed {self.path}: {self.before}"
        return f"{self.path}: {self.before} -> {self.after}"


def _set_changes(path: str, before: set[Any], after: set[Any]) -> list[Change]:
    changes = [Change(path, None, v, Effect.widening) for v in sorted(after - before)]
    changes += [Change(path, v, None, Effect.narrowing) for v in sorted(before - after)]
    return changes


def _ordered(path: str, before: Any, after: Any, more_is_wider: bool) -> list[Change]:
    if before == after:
        return []
    wider = (after > before) if more_is_wider else (after < before)
    return [Change(path, before, after, Effect.widening if wider else Effect.narrowing)]


def _optional_bound(
    path: str, before: date | int | None, after: date | int | None
) -> list[Change]:
    """An end (date or days); None means no end, the widest."""
    if before == after:
        return []
    if before is None:
        return [Change(path, "none", after, Effect.narrowing)]
    if after is None:
        return [Change(path, before, "none", Effect.widening)]
    return _ordered(path, before, after, more_is_wider=True)


def _scope(
    path: str, before: tuple[Any, ...] | None, after: tuple[Any, ...] | None
) -> list[Change]:
    """A population list; None means everyone."""
    if before == after:
        return []
    if before is None:
        return [Change(path, "all", list(after or ()), Effect.narrowing)]
    if after is None:
        return [Change(path, list(before), "all", Effect.widening)]
    return _set_changes(path, set(before), set(after))


def _recipient_changes(before: Recipient, after: Recipient) -> list[Change]:
    path = f"recipients[{after.partner}]"
    changes = _ordered(
        f"{path}.access",
        ACCESS_ORDER.index(before.access.value),
        ACCESS_ORDER.index(after.access.value),
        more_is_wider=True,
    )
    changes = [
        Change(c.path, before.access.value, after.access.value, c.effect)
        for c in changes
    ]
    changes += _set_changes(
        f"{path}.operations",
        {o.value for o in before.operations},
        {o.value for o in after.operations},
    )
    changes += _scope(f"{path}.roles", before.roles or None, after.roles or None)
    changes += _scope(
        f"{path}.purposes", before.purposes or None, after.purposes or None
    )
    return changes


def diff_documents(before: AgreementDocument, after: AgreementDocument) -> list[Change]:
    """Every difference between two versions, in document order."""
    changes: list[Change] = []
    for name in ("title", "tier", "legal_basis", "contacts", "parties"):
        if getattr(before, name) != getattr(after, name):
            b, a = getattr(before, name), getattr(after, name)
            effect = Effect.neutral
            if name == "parties" and set(a.licensees) - set(b.licensees):
                effect = Effect.widening
            elif name == "parties" and set(b.licensees) - set(a.licensees):
                effect = Effect.narrowing
            changes.append(Change(name, _plain(b), _plain(a), effect))
    if before.status != after.status:
        wider = after.status.value == "active"
        changes.append(
            Change(
                "status",
                before.status.value,
                after.status.value,
                Effect.widening if wider else Effect.narrowing,
            )
        )
    changes += _ordered(
        "effective_from",
        before.effective_from,
        after.effective_from,
        more_is_wider=False,
    )
    changes += _optional_bound("effective_to", before.effective_to, after.effective_to)
    changes += _set_changes("purposes", before.purpose_ids(), after.purpose_ids())
    before_sets = {d.entity: d for d in before.datasets}
    after_sets = {d.entity: d for d in after.datasets}
    changes += _set_changes("datasets", set(before_sets), set(after_sets))
    for entity in sorted(set(before_sets) & set(after_sets)):
        changes += _set_changes(
            f"datasets[{entity}].fields",
            before_sets[entity].field_names(),
            after_sets[entity].field_names(),
        )
    for field in ("school_years", "grades", "schools"):
        changes += _scope(
            f"population.{field}",
            getattr(before.population, field),
            getattr(after.population, field),
        )
    for flag in ("consent_required", "opt_out_honoured"):
        b, a = getattr(before.population, flag), getattr(after.population, flag)
        if b != a:
            changes.append(
                Change(
                    f"population.{flag}",
                    b,
                    a,
                    Effect.narrowing if a else Effect.widening,
                )
            )
    b_rec = {r.partner: r for r in before.recipients}
    a_rec = {r.partner: r for r in after.recipients}
    changes += _set_changes("recipients", set(b_rec), set(a_rec))
    for partner in sorted(set(b_rec) & set(a_rec)):
        changes += _recipient_changes(b_rec[partner], a_rec[partner])
    if before.linkage.allowed != after.linkage.allowed:
        changes.append(
            Change(
                "linkage.allowed",
                before.linkage.allowed,
                after.linkage.allowed,
                Effect.widening if after.linkage.allowed else Effect.narrowing,
            )
        )
    changes += _set_changes(
        "linkage.linkable_with",
        set(before.linkage.linkable_with),
        set(after.linkage.linkable_with),
    )
    changes += _optional_bound(
        "linkage.keys_retention_days",
        before.linkage.keys_retention_days,
        after.linkage.keys_retention_days,
    )
    if before.linkage.method != after.linkage.method:
        changes.append(
            Change(
                "linkage.method",
                before.linkage.method,
                after.linkage.method,
                Effect.widening
                if after.linkage.method == "clear_text"
                else Effect.narrowing,
            )
        )
    changes += _ordered(
        "redisclosure",
        REDISCLOSURE_ORDER.index(before.redisclosure.value),
        REDISCLOSURE_ORDER.index(after.redisclosure.value),
        more_is_wider=True,
    )
    changes = [
        Change(c.path, before.redisclosure.value, after.redisclosure.value, c.effect)
        if c.path == "redisclosure"
        else c
        for c in changes
    ]
    bp, ap = before.publication, after.publication
    if bp.method != ap.method:
        # noise instead of suppression: a change of kind, for the steward to read
        changes.append(
            Change(
                "publication.method", bp.method.value, ap.method.value, Effect.neutral
            )
        )
    changes += _ordered(
        "publication.min_cell_size",
        bp.min_cell_size,
        ap.min_cell_size,
        more_is_wider=False,
    )
    changes += _ordered(
        "publication.extract_k", bp.extract_k, ap.extract_k, more_is_wider=False
    )
    if bp.complementary_suppression != ap.complementary_suppression:
        changes.append(
            Change(
                "publication.complementary_suppression",
                bp.complementary_suppression,
                ap.complementary_suppression,
                Effect.narrowing if ap.complementary_suppression else Effect.widening,
            )
        )
    bc, ac = bp.top_bottom_coding, ap.top_bottom_coding
    if bc != ac:
        if bc is None or ac is None:
            effect = Effect.narrowing if ac else Effect.widening
        else:
            wider = (
                ac.top_percent > bc.top_percent or ac.bottom_percent < bc.bottom_percent
            )
            narrower = (
                ac.top_percent < bc.top_percent or ac.bottom_percent > bc.bottom_percent
            )
            effect = (
                Effect.widening
                if wider
                else (Effect.narrowing if narrower else Effect.neutral)
            )
        changes.append(
            Change("publication.top_bottom_coding", _plain(bc), _plain(ac), effect)
        )
    b_delta = bp.dp_budget.delta if bp.dp_budget else 0.0
    a_delta = ap.dp_budget.delta if ap.dp_budget else 0.0
    changes += _ordered(
        "publication.dp_budget.delta", b_delta, a_delta, more_is_wider=True
    )
    changes += _optional_bound(
        "publication.partner_review_days",
        bp.partner_review_days,
        ap.partner_review_days,
    )
    changes = [
        Change(
            c.path,
            c.before,
            c.after,
            Effect.narrowing if c.effect is Effect.widening else Effect.widening,
        )
        if c.path == "publication.partner_review_days"
        and c.effect is not Effect.neutral
        else c
        for c in changes
    ]
    b_eps = bp.dp_budget.epsilon if bp.dp_budget else 0.0
    a_eps = ap.dp_budget.epsilon if ap.dp_budget else 0.0
    changes += _ordered(
        "publication.dp_budget.epsilon", b_eps, a_eps, more_is_wider=True
    )
    for flag in ("encryption_at_rest", "mfa_required", "no_local_download"):
        b, a = getattr(before.security, flag), getattr(after.security, flag)
        if b != a:
            changes.append(
                Change(
                    f"security.{flag}", b, a, Effect.narrowing if a else Effect.widening
                )
            )
    if before.security.storage_location != after.security.storage_location:
        changes.append(
            Change(
                "security.storage_location",
                before.security.storage_location,
                after.security.storage_location,
                Effect.neutral,
            )
        )
    br = before.retention
    ar = after.retention
    changes += _optional_bound(
        "retention.destroy_after_days",
        br.destroy_after_days if br else None,
        ar.destroy_after_days if ar else None,
    )
    changes += _optional_bound(
        "retention.destroy_by",
        br.destroy_by if br else None,
        ar.destroy_by if ar else None,
    )
    b_hours = before.breach.notify_within_hours if before.breach else None
    a_hours = after.breach.notify_within_hours if after.breach else None
    changes += _optional_bound("breach.notify_within_hours", b_hours, a_hours)
    bt, at = before.termination, after.termination
    changes += _optional_bound(
        "termination.destroy_within_days",
        bt.destroy_within_days if bt else None,
        at.destroy_within_days if at else None,
    )
    if _plain(bt) != _plain(at) and not any(
        c.path.startswith("termination") for c in changes
    ):
        changes.append(Change("termination", _plain(bt), _plain(at), Effect.neutral))
    if br and ar and br.certificate_required != ar.certificate_required:
        changes.append(
            Change(
                "retention.certificate_required",
                br.certificate_required,
                ar.certificate_required,
                Effect.narrowing if ar.certificate_required else Effect.widening,
            )
        )
    b_notify = set(before.breach.notify_parties) if before.breach else set()
    a_notify = set(after.breach.notify_parties) if after.breach else set()
    changes += [
        Change("breach.notify_parties", p, None, Effect.widening)
        for p in sorted(b_notify - a_notify)
    ]
    changes += [
        Change("breach.notify_parties", None, p, Effect.narrowing)
        for p in sorted(a_notify - b_notify)
    ]
    b_purpose = {p.id: p for p in before.purposes}
    for p in after.purposes:
        old = b_purpose.get(p.id)
        if old is not None and old != p:
            # a reworded purpose can change what it permits: the parties approve it
            changes.append(
                Change(f"purposes[{p.id}]", _plain(old), _plain(p), Effect.widening)
            )
    ranks = ("public", "directory", "confidential", "restricted")
    for entity in sorted(set(before_sets) & set(after_sets)):
        b_fields = {f.name: f.classification.value for f in before_sets[entity].fields}
        for f in after_sets[entity].fields:
            old_class = b_fields.get(f.name)
            if old_class is not None and old_class != f.classification.value:
                lower = ranks.index(f.classification.value) < ranks.index(old_class)
                changes.append(
                    Change(
                        f"datasets[{entity}].fields[{f.name}].classification",
                        old_class,
                        f.classification.value,
                        Effect.widening if lower else Effect.narrowing,
                    )
                )
    if before.parties.recipient != after.parties.recipient:
        changes.append(
            Change(
                "parties.recipient",
                before.parties.recipient,
                after.parties.recipient,
                Effect.widening,
            )
        )
    if before.signatories != after.signatories:
        changes.append(
            Change(
                "signatories",
                [f"{x.partner} {x.signed}" for x in before.signatories],
                [f"{x.partner} {x.signed}" for x in after.signatories],
                Effect.neutral,
            )
        )
    # Anything else that differs is listed too, so no change goes unseen.
    b_all = before.model_dump(mode="json", exclude={"version"})
    a_all = after.model_dump(mode="json", exclude={"version"})
    for key in b_all:
        if b_all[key] != a_all.get(key) and not any(
            c.path == key or c.path.startswith((f"{key}.", f"{key}[")) for c in changes
        ):
            changes.append(Change(key, b_all[key], a_all.get(key), Effect.neutral))
    return changes


def classify(changes: list[Change]) -> Effect:
    """A version widens if any change widens; it narrows if any narrows and none widens."""
    effects = {c.effect for c in changes}
    if Effect.widening in effects:
        return Effect.widening
    if Effect.narrowing in effects:
        return Effect.narrowing
    return Effect.neutral


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
