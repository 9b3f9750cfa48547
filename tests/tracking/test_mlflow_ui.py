"""The MLflow UI on the project's store, opened with the command `policy-topics train` prints (and README
gives), looked at in a real headless Chromium: the sweep's runs and their metrics are on the runs page."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from conftest import REPO, cli_env, free_port, run_cli, stop_group, wait_for_health

from policy_topics.search.trials import PARENT_TAG, ROLE_TAG

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO / "test-artifacts"
# Debian's Chromium as root on a machine with no network but loopback (see the env notes).
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1920,1000"]


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory):
    """A home whose store holds a finished two-model sweep of the demo corpus."""
    import mlflow

    home = tmp_path_factory.mktemp("ui-home")
    result = run_cli(["train", "--multirun", "model=linearsvc,ridge"], home)
    assert result.returncode == 0, result.stderr
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("demo")
    found = client.search_runs([experiment.experiment_id])
    parents = [r for r in found if r.data.tags.get(ROLE_TAG) == "sweep"]
    runs = [r for r in found if r not in parents]
    assert len(parents) == 1 and all(r.data.tags[PARENT_TAG] == parents[0].info.run_id for r in runs)
    assert sorted(r.data.params["model.name"] for r in runs) == ["linearsvc", "ridge"]
    ui_command = result.stdout.rsplit("MLflow UI", 1)[1].splitlines()[0].strip()
    return home, experiment.experiment_id, runs, ui_command


@pytest.fixture(scope="module")
def mlflow_ui(sweep_store, tmp_path_factory) -> Iterator[str]:
    """The printed UI command, run as printed but on a free port. MLflow's job runner (for GenAI features
    this project does not use) is off, as README suggests: it doubles start-up and takes 12 s to stop."""
    home, _, _, ui_command = sweep_store
    port = free_port()
    argv = shlex.split(ui_command.replace("--port 5000", f"--port {port}"))
    log = tmp_path_factory.mktemp("ui") / "mlflow-ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=cli_env(home, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"), cwd=home,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, proc, log, timeout_s=150)
        yield url
    finally:
        stop_group(proc)


@pytest.fixture
def browser(tmp_path) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and chromedriver, "Debian's chromium and chromium-driver are missing: run `make system-deps`"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
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


def test_the_runs_page_shows_the_sweep_runs_with_their_test_macro_f1(mlflow_ui, sweep_store, browser):
    """As README tells a user: open the runs page, sort by test_macro_f1, pick the metric columns."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    _, experiment_id, runs, _ = sweep_store
    # Bounded polls, not sleeps: the page renders rows as the runs arrive, and re-renders them.
    wait = WebDriverWait(browser, 90, poll_frequency=0.5, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(f"{mlflow_ui}/#/experiments/{experiment_id}/runs?orderByKey=metrics.%60test_macro_f1%60"
                "&orderByAsc=false")
    wait.until(lambda d: all(run.info.run_name in rows_by_run(d).get(run.info.run_id, "") for run in runs))
    for close in browser.find_elements(By.CSS_SELECTOR,
                                       "button[data-component-id='mlflow.assistant.chat_panel.close']"):
        close.click()  # the assistant panel would hide the metric columns in the screenshot
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
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "mlflow-ui-runs.png"
    browser.save_screenshot(str(screenshot))
    print(f"screenshot of the runs page: {screenshot}")
    for run in runs:
        row = rows[run.info.run_id]
        assert run.info.run_name in row and shown(run) in row and run.data.params["model.name"] in row
        assert str(run.data.metrics["val_macro_f1"]) in row
    best = max(runs, key=lambda run: run.data.metrics["test_macro_f1"])
    assert rows[best.info.run_id + ":index"] == "0"  # sorted by the metric, best first
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
