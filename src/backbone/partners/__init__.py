"""Partners and the promises between them: the registry, agreements as living
documents, commitments, feeds, data-use requests, the status and digests."""

from backbone.partners.registry import Contact, Partner, PartnerRegistry

__all__ = ["Contact", "Partner", "PartnerRegistry"]
