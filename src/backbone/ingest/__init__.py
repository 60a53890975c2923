"""Partner submissions: readers, mappings, validation, quarantine, reports."""

from backbone.ingest.mapping import Mapping, load_mapping
from backbone.ingest.submit import Ingestor, SubmissionResult, TargetResult

__all__ = ["Ingestor", "Mapping", "SubmissionResult", "TargetResult", "load_mapping"]
