"""Model-from-code entry file that MLflow stores with each logged model and runs on load."""

from mlflow.models import set_model

from policy_topics.models.pyfunc import TopicModel

set_model(TopicModel())
