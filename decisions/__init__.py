"""From scores to one decision per customer: segments, goal, channel, timing, offer and reason.

Data flow: ``models.pipeline`` scores -> ``decisions.segments`` (lifecycle, value tier,
behaviour) -> ``decisions.decide`` (goal, channel with consent, send_at, offer, reason), with
the global control group (``decisions.control``), channel measurements from the contacts log
(``decisions.channels``) and every threshold from a rules file (``decisions.rules``).
"""
