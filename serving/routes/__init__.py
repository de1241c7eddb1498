"""The API's routes: scoring and stored scores, segments and exports, the model, health and metrics."""

from retain.serving.routes import customers, effect, health, model, scores, segments

ROUTERS = (customers.router, scores.router, segments.router, model.router, health.router,
           effect.router)
