"""The API's routes: scoring and stored scores, the model, health and metrics."""

from serving.routes import health, model, scores

ROUTERS = (scores.router, model.router, health.router)
