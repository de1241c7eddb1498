"""The proof, after the decisions, as frames: what the messages earned against the global
control group (``analytics.effect``), how each channel did over time
(``analytics.channels_over_time``), cohorts and unit economics (``analytics.cohorts``), drift
between score runs (``analytics.drift``) and past predictions against what happened
(``analytics.calibration``). ``serving.report`` draws them in one HTML file.
"""
