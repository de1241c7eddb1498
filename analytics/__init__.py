"""The proof, after the decisions: what the messages earned against the global control group
(``analytics.effect``), how each channel did over time, cohorts and unit economics
(``analytics.cohorts``), drift and predictions against what happened (``analytics.drift``),
and the one HTML report that shows them (``analytics.report``).
"""
