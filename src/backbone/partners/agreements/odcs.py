"""An agreement's shared datasets as Open Data Contract Standard (ODCS) v3
documents, for data-governance tools: each dataset of the version in force
becomes one contract, its schema taken from the canonical model with the
agreement's field classes, and the agreement's purposes, parties, recipients,
retention and publication rules carried as custom properties (ODCS has no field
for a legal basis or a release rule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backbone.partners.agreements.document import SHAREABLE, Dataset

if TYPE_CHECKING:
    from backbone.partners.agreements.store import VersionRecord

__all__ = ["ODCS_VERSION", "odcs_documents"]

ODCS_VERSION = "v3.1.0"
# ODCS status values for an agreement's status, and logical types for the
# canonical model's SQL types
_STATUS = {"draft": "draft", "active": "active", "expired": "retired"}
_LOGICAL = {
    "VARCHAR": "string",
    "TEXT": "string",
    "DATE": "date",
    "TIMESTAMP": "date",
    "TIMESTAMPTZ": "date",
    "BOOLEAN": "boolean",
    "DOUBLE": "number",
    "REAL": "number",
    "FLOAT": "number",
    "DECIMAL": "number",
    "BIGINT": "integer",
    "INTEGER": "integer",
    "SMALLINT": "integer",
    "TINYINT": "integer",
    "HUGEINT": "integer",
    "UBIGINT": "integer",
    "UINTEGER": "integer",
    "USMALLINT": "integer",
    "UTINYINT": "integer",
}


def _logical(sql_type: str) -> str:
    base = sql_type.upper().split("(")[0].strip()
    if base.endswith("[]"):
        return "array"
    return _LOGICAL.get(base, "string")


def _custom(**values: Any) -> list[dict[str, Any]]:
    return [{"property": k, "value": v} for k, v in values.items() if v is not None]


def _dataset_contract(v: VersionRecord, dataset: Dataset) -> dict[str, Any]:
    doc = v.document
    table = SHAREABLE[dataset.entity]
    columns = {c.name: c for c in table.columns}
    properties = []
    for f in dataset.fields:
        column = columns[f.name]
        prop: dict[str, Any] = {
            "name": f.name,
            "logicalType": _logical(column.type),
            "physicalType": column.type,
            "required": not column.nullable,
            "classification": f.classification.value,
        }
        if f.name in table.primary_key:
            prop["primaryKey"] = True
        if column.doc:
            prop["description"] = column.doc
        if column.descriptor:
            prop["customProperties"] = _custom(edfiDescriptor=column.descriptor)
        properties.append(prop)
    publication = doc.publication
    retention = doc.retention
    sla = []
    if retention is not None and retention.destroy_after_days is not None:
        sla.append(
            {
                "property": "retention",
                "value": retention.destroy_after_days,
                "unit": "d",
            }
        )
    return {
        "apiVersion": ODCS_VERSION,
        "kind": "DataContract",
        "id": f"{doc.agreement_id}-v{v.version}-{dataset.entity}",
        "name": f"{doc.title}: {dataset.entity}",
        "version": f"{v.version}.0.0",
        "status": _STATUS.get(doc.status.value, doc.status.value),
        "domain": "education",
        "dataProduct": doc.agreement_id,
        "tenant": doc.parties.provider,
        "description": {
            "purpose": "; ".join(f"{p.id}: {p.description}" for p in doc.purposes)
            or doc.title,
            "usage": "Only the recipients, roles, operations and purposes listed in "
            "customProperties, as the agreement says; published aggregates follow "
            "its publication rule.",
            "limitations": f"Redisclosure: {doc.redisclosure.value}. Legal basis: "
            f"{doc.legal_basis.basis.value}"
            + (f" ({doc.legal_basis.citation})" if doc.legal_basis.citation else "")
            + ".",
        },
        "schema": [
            {
                "name": dataset.entity,
                "physicalName": table.qualified_name,
                "physicalType": "table",
                "logicalType": "object",
                **({"description": table.doc} if table.doc else {}),
                "properties": properties,
            }
        ],
        "slaProperties": sla,
        "customProperties": _custom(
            agreement=f"{doc.agreement_id}@{v.version}",
            agreementTitle=doc.title,
            effectiveFrom=doc.effective_from.isoformat(),
            effectiveTo=doc.effective_to.isoformat() if doc.effective_to else None,
            inForceFrom=v.in_force_from.isoformat() if v.in_force_from else None,
            legalBasis=doc.legal_basis.basis.value,
            provider=doc.parties.provider,
            recipient=doc.parties.recipient,
            licensees=list(doc.parties.licensees),
            purposes=[p.model_dump(mode="json") for p in doc.purposes],
            recipients=[r.model_dump(mode="json") for r in doc.recipients],
            population=doc.population.model_dump(mode="json", exclude_none=True),
            redisclosure=doc.redisclosure.value,
            publication=publication.model_dump(mode="json", exclude_none=True),
            retention=retention.model_dump(mode="json", exclude_none=True)
            if retention
            else None,
            linkage=doc.linkage.model_dump(mode="json"),
            approvals=[
                {"partner": p, "by": by, "on": on.isoformat()}
                for p, by, on in v.approvals
            ],
        ),
    }


def odcs_documents(v: VersionRecord) -> list[tuple[str, dict[str, Any]]]:
    """Each shared dataset of agreement version ``v`` as (file stem, ODCS document),
    each read by the standard's own model first (a document it refuses is a bug
    here, never something to hand a governance tool)."""
    from open_data_contract_standard.model import OpenDataContractStandard

    made = []
    for d in v.document.datasets:
        document = _dataset_contract(v, d)
        OpenDataContractStandard.model_validate(document)
        made.append((f"{v.agreement_id}-v{v.version}-{d.entity}", document))
    return made
