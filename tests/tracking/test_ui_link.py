"""The MLflow UI link the commands print, and the experiment tags behind it: the "Model training" view
of the right experiment, on the project's saved view of the runs table (MLflow 3.17's format)."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from policy_topics.tracking.store import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    RUNS_VIEW_KEY,
    RUNS_VIEW_NAME,
    RUNS_VIEW_TAG,
    TrackingTarget,
    experiment_id,
)


@pytest.fixture
def target(tmp_path) -> TrackingTarget:
    return TrackingTarget(f"sqlite:///{tmp_path / 'mlflow.db'}", "ui-link", tmp_path / "artifacts")


def test_a_local_store_prints_the_command_then_the_address_of_the_training_runs(target):
    command, address = target.ui_command("7").split("\n")
    assert command.split()[1:] == ["ui", "--backend-store-uri", target.uri, "--host", "127.0.0.1", "--port",
                                   "5000", "--workers", "1"]
    assert address == (" " * 14 + "then open http://127.0.0.1:5000/#/experiments/7/runs?"
                       "workflowType=machine_learning&viewStateShareKey=policy-topics")
    assert target.ui_command() == command  # no experiment yet: the command alone


def test_a_server_prints_its_own_address_without_credentials():
    server = TrackingTarget("https://alice:secret@mlflow.example.org/team/", "ui-link", None)
    assert server.ui_command("12") == ("open https://mlflow.example.org/team/#/experiments/12/runs?"
                                       "workflowType=machine_learning&viewStateShareKey=policy-topics in a browser")
    assert TrackingTarget("http://127.0.0.1:5000", "x", None).ui_url("3") == (
        "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&viewStateShareKey=policy-topics")


def view_state(tags: dict[str, str]) -> dict:
    """The saved view, read as MLflow 3.17's UI reads one: an envelope with a string name, a number
    createdAt and the state as a JSON string."""
    envelope = json.loads(tags[RUNS_VIEW_TAG])
    assert envelope["name"] == RUNS_VIEW_NAME and isinstance(envelope["createdAt"], int)
    assert isinstance(envelope["state"], str)
    return json.loads(envelope["state"])


@pytest.mark.e2e  # builds a real MLflow store
def test_a_new_experiment_is_tagged_for_model_training_with_the_saved_view(target):
    import mlflow

    found = mlflow.MlflowClient(target.uri).get_experiment(experiment_id(target))
    assert found.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"
    state = view_state(found.tags)
    assert state["orderByKey"] == "attributes.start_time" and state["orderByAsc"] is False  # newest run first
    columns = state["selectedColumns"]
    assert columns[:4] == ["metrics.`val_macro_f1`", "metrics.`val_accuracy`", "metrics.`test_macro_f1`",
                           "metrics.`test_accuracy`"]
    assert {"metrics.`oof_macro_f1`", "metrics.`shared_macro_f1`", "params.`model.name`"} <= set(columns)
    assert state["columnOrder"] == columns
    key = urllib.parse.parse_qs(target.ui_url(found.experiment_id).split("?", 1)[1])["viewStateShareKey"]
    assert key == [RUNS_VIEW_KEY]
    assert RUNS_VIEW_TAG == "mlflow.sharedViewState.policy-topics"  # where MLflow 3.17 keeps saved views


@pytest.mark.e2e  # builds a real MLflow store
def test_an_existing_experiment_gets_the_tags_it_lacks_and_keeps_those_it_has(target):
    import mlflow

    client = mlflow.MlflowClient(target.uri)
    made_elsewhere = client.create_experiment(target.experiment)
    plain = TrackingTarget(target.uri, "plain", None)
    chosen = client.create_experiment(plain.experiment, tags={EXPERIMENT_KIND_TAG: "genai_development"})

    assert experiment_id(target) == made_elsewhere
    assert client.get_experiment(made_elsewhere).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert view_state(client.get_experiment(made_elsewhere).tags)["selectedColumns"]
    assert experiment_id(plain) == chosen
    tags = client.get_experiment(chosen).tags
    assert tags[EXPERIMENT_KIND_TAG] == "genai_development"  # the user's choice stays
    assert view_state(tags)["selectedColumns"]


@pytest.mark.e2e  # builds a real MLflow store
def test_a_server_that_refuses_the_tags_still_gets_the_run(target, monkeypatch):
    """Tagging is for the UI's sake: a user allowed to log runs but not to tag the experiment still can."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

    made = mlflow.MlflowClient(target.uri).create_experiment(target.experiment)

    def refuse(*_args, **_kwargs):
        raise MlflowException("not allowed", error_code=PERMISSION_DENIED)

    monkeypatch.setattr(mlflow.MlflowClient, "set_experiment_tag", refuse)
    assert experiment_id(target) == made
