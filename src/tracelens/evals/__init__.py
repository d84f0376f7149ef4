"""Task evals built from production traffic: suites, graders, targets, runs and regression statistics.

Headless core (no click/textual). See docs/evals.md.
"""
