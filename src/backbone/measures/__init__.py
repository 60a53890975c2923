"""Measures: early-warning indicators, segments, the risk model, charts."""
