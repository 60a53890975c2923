"""Identity resolution: partner records to persons (see ARCHITECTURE.md).

Public face: :class:`Linkage` (``wh.linkage``), :class:`RecordKey`, and the
partner-side encoder :func:`encode_records`.
"""

from backbone.linkage.holdings import Confirmation, Holdings, Unbacked
from backbone.linkage.link import LinkSummary
from backbone.linkage.model import ComparisonWeight
from backbone.linkage.persons import (
    Evaluation,
    EventPair,
    IdentityRecord,
    KindAccuracy,
    Linkage,
    LinkEvidence,
    PairExplanation,
    PersonEvent,
    PersonView,
    RecordKey,
    ReviewPair,
    ReviewStep,
)
from backbone.linkage.pprl import encode_records

__all__ = [
    "ComparisonWeight",
    "Confirmation",
    "Evaluation",
    "EventPair",
    "Holdings",
    "IdentityRecord",
    "KindAccuracy",
    "LinkEvidence",
    "LinkSummary",
    "Linkage",
    "PairExplanation",
    "PersonEvent",
    "PersonView",
    "RecordKey",
    "ReviewPair",
    "ReviewStep",
    "Unbacked",
    "encode_records",
]
