"""Identity resolution: partner records to persons (see ARCHITECTURE.md).

Public face: :class:`Linkage` (``wh.linkage``), :class:`RecordKey`, and the
partner-side encoder :func:`encode_records`.
"""

from backbone.linkage.link import LinkSummary
from backbone.linkage.persons import (
    Evaluation,
    Linkage,
    PairExplanation,
    PersonView,
    RecordKey,
    ReviewPair,
)
from backbone.linkage.pprl import encode_records

__all__ = [
    "Evaluation",
    "LinkSummary",
    "Linkage",
    "PairExplanation",
    "PersonView",
    "RecordKey",
    "ReviewPair",
    "encode_records",
]
