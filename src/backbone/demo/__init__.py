"""The synthetic community: eight districts, community organizations, a college
agency and funders, each sending files in its own dialect, with planted truth."""

from backbone.demo.generate import GenerateSummary, expected_steps, generate

__all__ = ["GenerateSummary", "expected_steps", "generate"]
