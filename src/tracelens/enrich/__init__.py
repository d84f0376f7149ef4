"""Enrichment of stored traces (refusal labels).

Contract: ``detect`` / ``detect_frame`` classify responses as refusals; see
``tracelens.enrich.refusal`` for the method. Never imports click or textual.
"""

from tracelens.enrich.refusal import DETECTOR_VERSION, RefusalResult, detect, detect_frame

__all__ = ["DETECTOR_VERSION", "RefusalResult", "detect", "detect_frame"]
