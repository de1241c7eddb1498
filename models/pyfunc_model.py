"""MLflow "models from code" entry: logged with the model, run at load time.

Declaring the model by code (not a cloudpickled object) keeps the artifact readable and free of
pickled Python objects other than our own fitted pipeline.
"""

from mlflow.models import set_model

from retain.models.pyfunc import RetainModel

set_model(RetainModel())
