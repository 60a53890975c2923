"""Partners of the partnership: organizations, their schools, programs and funders."""

from backbone.partners.registry import Partner, PartnerRegistry

__all__ = ["Partner", "PartnerRegistry"]
