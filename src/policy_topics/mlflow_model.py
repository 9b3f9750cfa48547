"""Model-from-code entry file that MLflow stores with each logged model and runs on load."""

from mlflow.models import set_model

from policy_topics.topic_model import TopicModel

set_model(TopicModel())
