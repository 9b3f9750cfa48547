"""The MLflow UI on the project's store, started with the command `policy-topics train` prints and opened
at the address it prints after it, looked at in a real headless Chromium: the "Model training" view of
the run's experiment, its runs table showing macro-F1 and accuracy with no column picked by hand (the
project's saved view); and the sweep's runs and their metrics on the runs page, sorted by a metric."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chromium import headless_chromium, keep_screenshot
from conftest import call_cli, cli_env, free_port, home_with_store, stop_group, wait_for_health

from policy_topics.search.trials import PARENT_TAG, ROLE_TAG
from policy_topics.tracking.store import RUNS_VIEW_NAME

pytestmark = pytest.mark.e2e

@dataclass
class UiStore:
    """A home whose store holds a finished two-model sweep of the demo corpus (experiment 'demo') and, in
    an experiment of its own, one training run: the terminal output of the last."""

    home: Path
    sweep_experiment_id: str
    sweep_runs: list[Any]
    experiment_id: str
    run: Any
    ui_command: str  # as printed: start the UI
    ui_link: str  # as printed: then open this


def printed_ui(stdout: str) -> tuple[str, str]:
    """The command and the address of the last "MLflow UI" entry of a summary, as a user copies them."""
    command, link, *_ = stdout.rsplit("  MLflow UI   ", 1)[1].splitlines()
    assert link.strip().startswith("then open "), stdout[-800:]
    return command.strip(), link.strip().removeprefix("then open ")


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory, built_store) -> UiStore:
    import mlflow

    home = home_with_store(tmp_path_factory.mktemp("ui-home"), built_store)
    result = call_cli(["train", "--multirun", "model=linearsvc,ridge"], home)
    assert result.returncode == 0, result.stderr
    single = call_cli(["train", "tracking.experiment=first-hour"], home)
    assert single.returncode == 0, single.stderr
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("demo")
    found = client.search_runs([experiment.experiment_id])
    parents = [r for r in found if r.data.tags.get(ROLE_TAG) == "sweep"]
    runs = [r for r in found if r not in parents]
    assert len(parents) == 1 and all(r.data.tags[PARENT_TAG] == parents[0].info.run_id for r in runs)
    assert sorted(r.data.params["model.name"] for r in runs) == ["linearsvc", "ridge"]
    own = client.get_experiment_by_name("first-hour")
    [run] = client.search_runs([own.experiment_id])
    assert run.info.run_id in single.stdout and own.experiment_id != experiment.experiment_id
    return UiStore(home, experiment.experiment_id, runs, own.experiment_id, run, *printed_ui(single.stdout))


@pytest.fixture(scope="module")
def mlflow_ui(sweep_store, tmp_path_factory) -> Iterator[str]:
    """The printed UI command, run as printed but on a free port. MLflow's job runner (for GenAI features
    this project does not use) is off, as README suggests: it doubles start-up and takes 12 s to stop."""
    port = free_port()
    argv = shlex.split(sweep_store.ui_command.replace("--port 5000", f"--port {port}"))
    log = tmp_path_factory.mktemp("ui") / "mlflow-ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=cli_env(sweep_store.home, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
                                cwd=sweep_store.home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, proc, log, timeout_s=150)
        yield url
    finally:
        stop_group(proc)


@pytest.fixture
def browser(tmp_path) -> Iterator:
    driver = headless_chromium(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


def rows_by_run(driver) -> dict[str, str]:
    """The visible text of each run's row (its pinned and scrolling parts), and its position, by run id."""
    from selenium.webdriver.common.by import By

    rows: dict[str, str] = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "[role='row'][row-id]"):
        run_id = row.get_attribute("row-id")
        rows[run_id] = f"{rows.get(run_id, '')}\n{row.text}".strip()
        rows[run_id + ":index"] = row.get_attribute("row-index")
    return rows


def close_assistant(driver) -> None:
    """MLflow's assistant panel opens by itself on a first visit and covers a third of the page."""
    from selenium.webdriver.common.by import By

    for close in driver.find_elements(By.CSS_SELECTOR,
                                      "button[data-component-id='mlflow.assistant.chat_panel.close']"):
        close.click()


def test_the_printed_link_opens_the_training_runs_with_macro_f1_and_accuracy(mlflow_ui, sweep_store, browser,
                                                                           tmp_path):
    """What the train summary prints, followed to the letter in a browser that never saw MLflow: no
    click, and the run is in a table with its macro-F1 and accuracy."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    store, run = sweep_store, sweep_store.run
    printed = re.fullmatch(r"http://127\.0\.0\.1:5000/#/experiments/(\d+)/runs\?(.+)", store.ui_link)
    assert printed and printed[1] == store.experiment_id, store.ui_link  # the run's experiment
    assert printed[2] == "workflowType=machine_learning&viewStateShareKey=policy-topics"
    wait = WebDriverWait(browser, 90, poll_frequency=0.5, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(store.ui_link.replace("http://127.0.0.1:5000", mlflow_ui))
    wait.until(lambda d: run.info.run_name in rows_by_run(d).get(run.info.run_id, ""))
    close_assistant(browser)

    # The "Model training" view, not the GenAI one: its navigation, and the address kept.
    navigation = {line for nav in browser.find_elements(By.CSS_SELECTOR, "nav, aside")
                  for line in nav.text.splitlines()}
    assert {"Runs", "Models", "Model registry"} <= navigation
    assert not {"Overview", "Training runs", "Sessions", "Evaluation", "Judges"} & navigation
    assert "Detect issues" not in browser.find_element(By.TAG_NAME, "body").text
    assert f"/#/experiments/{store.experiment_id}/runs?workflowType=machine_learning" in browser.current_url
    # The project's saved view is the one shown, and the metric columns are there without a click.
    assert browser.find_element(By.CSS_SELECTOR, "[data-testid='saved-views-trigger']").text == RUNS_VIEW_NAME
    columns = ["metrics.`val_macro_f1`", "metrics.`val_accuracy`", "metrics.`test_macro_f1`",
               "metrics.`test_accuracy`", "params.`model.name`"]

    def headers(driver) -> list[str] | bool:
        shown = [h.get_attribute("col-id") for h in driver.find_elements(By.CSS_SELECTOR, "[role='columnheader']")]
        return shown if set(columns) <= set(shown) else False

    wait.until(headers)  # every column of the view, without a click (their order the grid may still shuffle)
    metrics = ("val_macro_f1", "val_accuracy", "test_macro_f1", "test_accuracy")
    values = [str(run.data.metrics[name]) for name in metrics]  # as the UI prints a float

    def row(driver) -> str | bool:
        text = rows_by_run(driver).get(run.info.run_id, "")
        return text if all(value in text for value in values) else False

    text = wait.until(row)
    assert run.data.params["model.name"] in text
    assert not set(rows_by_run(browser)) & {r.info.run_id for r in store.sweep_runs}  # only this experiment's
    keep_screenshot(browser, tmp_path, "mlflow-ui-training-runs.png")


def test_the_runs_page_shows_the_sweep_runs_with_their_test_macro_f1(mlflow_ui, sweep_store, browser, tmp_path):
    """As README tells a user: open the runs page, sort by test_macro_f1, pick the metric columns."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    experiment_id, runs = sweep_store.sweep_experiment_id, sweep_store.sweep_runs
    # Bounded polls, not sleeps: the page renders rows as the runs arrive, and re-renders them.
    wait = WebDriverWait(browser, 90, poll_frequency=0.5, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(f"{mlflow_ui}/#/experiments/{experiment_id}/runs?orderByKey=metrics.%60test_macro_f1%60"
                "&orderByAsc=false")
    wait.until(lambda d: all(run.info.run_name in rows_by_run(d).get(run.info.run_id, "") for run in runs))
    close_assistant(browser)  # the assistant panel would hide the metric columns in the screenshot
    browser.find_element(By.CSS_SELECTOR, "[data-testid='column-selection-dropdown']").click()
    for column in ("test_macro_f1", "val_macro_f1", "model.name"):
        wait.until(lambda d, c=column: d.find_elements(By.CSS_SELECTOR, f"span[title='{c}']"))[0].click()
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)

    def shown(run) -> str:  # what the UI prints for a float: JavaScript's shortest round-trip form
        return str(run.data.metrics["test_macro_f1"])

    def rows_with_metrics(driver) -> dict[str, str] | bool:
        rows = rows_by_run(driver)
        return rows if all(shown(run) in rows.get(run.info.run_id, "") for run in runs) else False

    rows = wait.until(rows_with_metrics)
    keep_screenshot(browser, tmp_path, "mlflow-ui-runs.png")
    for run in runs:
        row = rows[run.info.run_id]
        assert run.info.run_name in row and shown(run) in row and run.data.params["model.name"] in row
        assert str(run.data.metrics["val_macro_f1"]) in row
    best = max(runs, key=lambda run: run.data.metrics["test_macro_f1"])
    assert rows[best.info.run_id + ":index"] == "0"  # sorted by the metric, best first
