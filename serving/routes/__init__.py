"""The API's routes: scoring and stored scores, segments and exports, the model, health and metrics."""

from serving.routes import health, model, scores, segments

ROUTERS = (scores.router, segments.router, model.router, health.router)
