"""retain: churn, value and repurchase-timing predictions and one decision per customer."""

__version__ = "0.1.0"
